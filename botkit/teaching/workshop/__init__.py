"""Workshop support: friendly exercise checks, a machine check for the room, and the feedback summary.

Why a module of its own: in a workshop the first ten minutes and every stuck participant cost
the whole room time. So

* every exercise check returns a :class:`CheckResult` that reads ``✅ done: ...`` or
  ``⏳ not yet: <a hint about exactly what is missing or wrong>`` and **never raises**: a TODO
  left as ``None`` or ``...``, a wrong type, or an exception inside the participant's own code
  all become hints, so a notebook always runs to the end and a facilitator can see at a
  glance where each team is;
* :func:`machine_check` (``botkit workshop check``) answers "is this laptop ready?" in one
  screen of green ✔ / red ✘ lines, each with the reason, before the workshop starts;
* :func:`summarize_feedback` (``botkit workshop feedback summarize FILE``) turns the answers
  of ``workshops/feedback_form_template.csv`` into a Markdown report and a chart the same
  evening, so the next day's blocks can change.

A few helpers keep the exercise notebooks short (:func:`with_new_intents`, :func:`run_gate`,
:func:`cpu_meter`, :func:`replay_traffic`, :func:`scrambled`). Heavy imports (BentoML, papermill,
matplotlib) happen inside functions: importing this module is cheap and imports no settings.
Locust is never imported here, only run as a child process (it hangs a Jupyter kernel).
"""

from __future__ import annotations

from botkit.teaching.workshop.checks import (
    CheckResult,
    check,
    done,
    is_todo,
    not_yet,
)
from botkit.teaching.workshop.exercises_model import (
    NEW_INTENTS,
    check_behaviour_test,
    check_dataset,
    check_floor_decision,
    check_gate,
    check_model_quality,
    run_botkit,
    run_gate,
    scrambled,
    show_predictions,
    with_new_intents,
)
from botkit.teaching.workshop.exercises_ops import (
    BOTTLENECKS,
    CpuMeter,
    check_bottleneck,
    check_drift_caught,
    check_promotion_decision,
    cpu_meter,
    replay_traffic,
)
from botkit.teaching.workshop.exercises_release import (
    PSI_READINGS,
    ProbeResult,
    check_manifests,
    check_probe_reading,
    check_psi_by_hand,
    check_psi_reading,
    check_replicas,
    kubelet_probe,
)
from botkit.teaching.workshop.feedback import (
    FEEDBACK_COLUMNS,
    FEEDBACK_QUESTIONS,
    FeedbackError,
    FeedbackSummary,
    summarize_feedback,
)
from botkit.teaching.workshop.machine import (
    CheckLine,
    format_lines,
    machine_check,
)

__all__ = [
    "BOTTLENECKS",
    "FEEDBACK_COLUMNS",
    "FEEDBACK_QUESTIONS",
    "NEW_INTENTS",
    "PSI_READINGS",
    "CheckLine",
    "CheckResult",
    "CpuMeter",
    "FeedbackError",
    "FeedbackSummary",
    "ProbeResult",
    "check",
    "check_behaviour_test",
    "check_bottleneck",
    "check_dataset",
    "check_drift_caught",
    "check_floor_decision",
    "check_gate",
    "check_manifests",
    "check_model_quality",
    "check_probe_reading",
    "check_promotion_decision",
    "check_psi_by_hand",
    "check_psi_reading",
    "check_replicas",
    "cpu_meter",
    "done",
    "format_lines",
    "is_todo",
    "kubelet_probe",
    "machine_check",
    "not_yet",
    "replay_traffic",
    "run_botkit",
    "run_gate",
    "scrambled",
    "show_predictions",
    "summarize_feedback",
    "with_new_intents",
]
