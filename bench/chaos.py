"""Chaos benchmark: headless agents answer carrier traffic while the servers are killed in turn.

The same run as tests/chaos/test_chaos.py, with options: ``agent-cli --auto-answer`` processes,
``interaction-server traffic`` as the carrier, SIGKILL + restart of A, then B, then A...; the ledger
checks every interaction against the supervisors' streams, the carrier's ledger and the agents'
events. Prints the ledger, then one JSON line (the last line) with at least ``submitted``,
``completed``, ``ended_with_reason``, ``lost``, ``completed_twice``, ``double_offers``, ``kills``, and
for the chats (the carriers play their customers) ``chats``, ``chat_lines_lost``,
``chat_lines_duplicated``, ``chat_lines_out_of_order``, and up to 5 ``chat_lost_samples`` (chat, line
id, sender, the site that answered or delivered it and when, the final transcript and the site that
sent it) and ``chat_disorder_samples`` (the customer's lines as typed beside the final transcript).
Exit code 1 if an interaction was lost, completed twice or offered twice, a chat line lost,
duplicated or out of order in its final transcript, or if the carrier's
ledger or the servers' queue statistics disagree with the interaction events.

``--freeze``: instead of the kills, either server (drawn at random) is stopped with SIGSTOP for a
random span of ``--freeze-min``..``--freeze-max`` seconds (default 2..20) at random moments of the
traffic, ``--freezes`` times (default 10), then continued with SIGCONT; the traffic lasts until
the last thaw at least; ``--seed`` draws the schedule. The JSON adds ``freezes`` and ``frozen_s``.

``--transfer-share F`` (default 0.2; 0 for the run without transfers): each agent transfers that
share of its calls halfway through (blind to the queue, or consulting the queue's first free member
and completing the hand-over); the JSON adds ``transferred`` and ``consultations`` (0 lost, 0
completed twice, 0 double offers still required).

    python bench/chaos.py [--agents 20] [--cycles 10] [--rate 4] [--duration 40] [--kill-with-work-in-hand]
    python bench/chaos.py --transfer-share 0.3
    python bench/chaos.py --freeze [--freezes 10] [--freeze-min 2] [--freeze-max 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.hogs import exit_on_sigterm  # noqa: E402
from tests.chaos.harness import VIOLATIONS, ChaosOptions, run_chaos  # noqa: E402


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be > 0")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=positive(int), default=20, help="agent-cli processes (default 20)")
    parser.add_argument(
        "--cycles", type=positive(int), default=10, help="kills in all, alternating A and B (default 10)"
    )
    parser.add_argument("--rate", type=positive(float), default=4.0, help="interactions per second (default 4)")
    parser.add_argument("--duration", type=positive(float), default=40.0, help="seconds of traffic (default 40)")
    parser.add_argument("--down-time", type=float, default=0.5, help="seconds a killed server stays down (default 0.5)")
    parser.add_argument(
        "--talk-time", type=positive(float), default=1.0, help="seconds an agent holds each interaction (default 1)"
    )
    parser.add_argument("--answer-delay", type=float, default=0.2, help="seconds before an agent accepts (default 0.2)")
    parser.add_argument(
        "--drain",
        type=float,
        default=20.0,
        help="seconds allowed after the traffic for every interaction to end (default 20)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-with-work-in-hand", action="store_true",
                        help="each kill waits until an agent holds one of the victim's interactions (small runs)")
    parser.add_argument("--freeze", action="store_true",
                        help="SIGSTOP/SIGCONT either server at random instead of the kills")
    parser.add_argument("--freezes", type=positive(int), default=10, help="with --freeze: how many (default 10)")
    parser.add_argument("--freeze-min", type=positive(float), default=2.0,
                        help="with --freeze: shortest span in seconds (default 2)")
    parser.add_argument("--freeze-max", type=positive(float), default=20.0,
                        help="with --freeze: longest span in seconds (default 20)")
    parser.add_argument("--transfer-share", type=float, default=0.2,
                        help="share of calls each agent transfers halfway, blind or consulting its queue (default 0.2)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--log-dir", type=Path, help="leave the servers' logs, the agents' events and the "
                        "supervisor streams there (for diagnosing a violation)")
    args = parser.parse_args(argv)
    if args.down_time < 0 or args.answer_delay < 0 or args.drain < 0:
        parser.error("--down-time, --answer-delay and --drain must be >= 0")
    if not 0 <= args.transfer_share <= 1:
        parser.error("--transfer-share must be within 0..1")
    if args.freeze_max < args.freeze_min:
        parser.error("--freeze-max must be >= --freeze-min")
    exit_on_sigterm()
    started = time.monotonic()
    ledger = run_chaos(ChaosOptions(agents=args.agents, cycles=args.cycles, rate=args.rate, duration=args.duration,
                                    down_time=args.down_time, talk_time=args.talk_time, answer_delay=args.answer_delay,
                                    drain=args.drain, seed=args.seed, log=not args.quiet,
                                    kill_with_work_in_hand=args.kill_with_work_in_hand,
                                    freezes=args.freezes if args.freeze else 0, freeze_min=args.freeze_min,
                                    freeze_max=args.freeze_max, transfer_share=args.transfer_share,
                                    log_dir=args.log_dir))
    figures = ledger.compute()
    print(ledger.text())
    figures = {
        **figures,
        "mode": "freeze" if args.freeze else "kill",
        "rate": args.rate,
        "duration_s": round(ledger.traffic_s or args.duration, 1),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))
    broken = any(figures[key] for key in VIOLATIONS)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
