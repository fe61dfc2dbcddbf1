"""``deployer verify``: prove each host is right after a rollout, with pytest-testinfra.

probe    one read-only program run on the host: every fact the built-in checks judge
checks   pure: which checks apply to a host, what they need, pass/fail with a reason
plugin   the pytest plugin of a per-host run: ``host``/``deployer_host`` fixtures, results
suite    the built-in checks as one parametrized pytest test
runner   one pytest process per host, in parallel threads; results per check per host
report   pure: table, JUnit XML, JSON, exit code
command  the click command
"""
