"""Executing plans on hosts: apply, rollout over many hosts, exec, logs.
"""
