# ruff: noqa: E501  (the bugs are quoted verbatim from the source lines they change)
"""The eight deliberate bugs of issue 13: apply each, run the tests that must kill it, revert.

`make deliberate-bugs`; exits 1 if any named test lets its bug through.
"""

import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parents[1]
BUGS = [
    (
        "1 oldest code wins",
        "mailbot/domain/checks.py",
        "    for message in reversed(messages):\n        codes = _codes_in_message",
        "    for message in messages:\n        codes = _codes_in_message",
        [
            "tests/domain/test_checks.py::test_a_resubmission_naming_another_customer_code_replaces_the_code_of_the_request"
        ],
    ),
    (
        "2 duplicate and not linked_case",
        "mailbot/domain/triage.py",
        "    return facts.duplicate\n",
        "    return facts.duplicate and not facts.linked_case\n",
        [
            "tests/domain/test_triage.py::test_a_reply_in_a_case_thread_delivered_twice_is_a_duplicate_too",
            "tests/domain/test_decision.py::test_a_thread_reply_delivered_twice_is_ignored_and_answered_once",
            "tests/service/test_intake.py::test_a_thread_reply_delivered_twice_is_filed_once_and_answered_once",
        ],
    ),
    (
        "3 JIS >= 0x7F -> > 0x7F",
        "mailbot/domain/japanese.py",
        "if s2 >= 0x7F:",
        "if s2 > 0x7F:",
        [
            "tests/domain/test_japanese.py::test_kabushiki_kaisha_system_decodes_beside_a_nec_row13_character",
            "tests/domain/test_japanese.py::test_every_jis_pair_with_trail_0x60_on_an_odd_row_decodes_like_the_stdlib",
            "tests/domain/test_japanese.py::test_the_hand_rolled_route_agrees_with_cp932_on_every_jis_x0208_pair",
        ],
    ),
    (
        "4 mark inside the transaction",
        "mailbot/service/intake.py",
        [
            (
                "        return file_decision(uow, inbound, decision, message, received_at, facts_extra=extra), True",
                "        filed = file_decision(uow, inbound, decision, message, received_at, facts_extra=extra)\n"
                "        self.source.mark(item, filed.disposition, filed.status)\n        return filed, True",
            ),
            (
                "        wanted = [(item, f.disposition, f.status) for item, (f, _fresh) in filed]",
                "        wanted = [(item, f.disposition, f.status) for item, (f, fresh) in filed if not fresh]",
            ),
        ],
        None,
        [
            "tests/service/test_intake.py::test_the_mailbox_is_marked_only_after_the_commit_so_a_failing_commit_loses_nothing",
            "tests/service/test_intake.py::test_a_batch_whose_commit_fails_leaves_every_one_of_its_messages_in_the_mailbox",
            "tests/service/test_crash.py::test_killing_the_poller_at_random_moments_loses_nothing_and_doubles_only_inside_the_relay_window[sqlite-maildir]",
        ],
    ),
    (
        "5a CP932 route behind stdlib (labelled ISO-2022-JP)",
        "mailbot/domain/japanese.py",
        '            "iso-2022-jp-cp932", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3",\n            "iso2022_jp_2004", "cp932", "utf-8",',
        '            "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3",\n            "iso2022_jp_2004", "iso-2022-jp-cp932", "cp932", "utf-8",',
        ["tests/domain/test_japanese.py::test_an_iso2022jp_wave_dash_decodes_as_windows_fullwidth_tilde"],
    ),
    (
        "5b CP932 route behind stdlib (sniffed)",
        "mailbot/domain/japanese.py",
        '        return ["iso-2022-jp-cp932", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004"]',
        '        return ["iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004", "iso-2022-jp-cp932"]',
        ["tests/domain/test_japanese.py::test_an_iso2022jp_wave_dash_decodes_as_windows_fullwidth_tilde"],
    ),
    (
        "5c Shift_JIS label behind shift_jis_2004",
        "mailbot/domain/japanese.py",
        '        return ["cp932", "shift_jis_2004", "utf-8", "euc_jp"]',
        '        return ["shift_jis_2004", "cp932", "utf-8", "euc_jp"]',
        ["tests/domain/test_japanese.py::test_a_shift_jis_wave_dash_decodes_as_windows_fullwidth_tilde"],
    ),
    (
        "6 manager-is-the-sender dropped",
        "mailbot/domain/checks.py",
        "            if message.sender is not None:\n                people.append(message.sender)\n",
        "",
        [
            "tests/domain/test_checks.py::test_a_manager_who_sends_the_request_needs_no_cc",
            "tests/domain/test_checks.py::test_the_branch_manager_sending_a_resubmission_counts_as_the_managers_copy",
            "tests/domain/test_decision.py::test_a_request_sent_by_the_branch_manager_without_any_cc_is_accepted",
        ],
    ),
    (
        "7a Auto-Submitted: only auto-generated/auto-replied",
        "mailbot/domain/triage.py",
        'if value.strip().lower().split(";")[0] not in ("", "no"):',
        'if value.strip().lower() in ("auto-generated", "auto-replied"):',
        ["tests/domain/test_triage.py::test_every_rfc3834_auto_submitted_value_but_no_is_automatic"],
    ),
    (
        "7b Auto-Submitted: parameters not split off",
        "mailbot/domain/triage.py",
        'if value.strip().lower().split(";")[0] not in ("", "no"):',
        'if value.strip().lower() not in ("", "no"):',
        ["tests/domain/test_triage.py::test_auto_submitted_no_in_any_spelling_is_a_person"],
    ),
    (
        "8 stale snapshot >= -> >",
        "mailbot/domain/decision.py",
        "unis.as_of >= received_at",
        "unis.as_of > received_at",
        ["tests/domain/test_decision.py::test_a_snapshot_taken_at_the_very_moment_the_mail_arrived_is_current"],
    ),
]
failed_any = False
for name, path, old, new, tests in BUGS:
    file = root / path
    original = file.read_text(encoding="utf-8")
    pairs = old if isinstance(old, list) else [(old, new)]
    text = original
    for o, n in pairs:
        assert text.count(o) == 1, (name, o)
        text = text.replace(o, n)
    file.write_text(text, encoding="utf-8")
    try:
        for t in tests:
            r = subprocess.run(
                [str(root / ".venv/bin/pytest"), "-q", "-p", "no:cacheprovider", "-x", t],
                cwd=root,
                capture_output=True,
                text=True,
            )
            verdict = "KILLED" if r.returncode == 1 else f"SURVIVED rc={r.returncode}"
            if r.returncode != 1:
                failed_any = True
            print(f"{name:55} {verdict:10} {t.split('::')[1]}", flush=True)
    finally:
        file.write_text(original, encoding="utf-8")
sys.exit(1 if failed_any else 0)
