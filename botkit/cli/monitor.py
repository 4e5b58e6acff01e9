"""``botkit`` subcommands: drift and anomaly reports, scripted traffic."""

from __future__ import annotations

import argparse

from botkit.cli._common import Registrar

__all__ = ["register"]


def cmd_monitor(a: argparse.Namespace) -> int:
    from botkit.ops import monitor

    return monitor.main([a.monitor_command, *a.rest])


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    mo = add("monitor", cmd_monitor, "drift and anomaly report (`report`), scripted traffic (`simulate`)")
    mo.add_argument("monitor_command", choices=("report", "simulate"), metavar="{report,simulate}")
    mo.add_argument("rest", nargs=argparse.REMAINDER, help="options of the action (see `botkit monitor report -h`)")

