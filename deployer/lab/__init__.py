"""The lab: throwaway Debian 12 hosts booted with systemd-nspawn on this machine.

``Lab(root).up(n)`` gives lab1..labN at 198.18.i.2, reachable as root with
``Lab.key_path`` and strict host-key checking against ``Lab.known_hosts_path``.
"""

from deployer.lab.lab import Lab, LabHost
from deployer.lab.run import LabError

__all__ = ["Lab", "LabHost", "LabError"]
