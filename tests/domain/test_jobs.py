from mailbot.domain.jobs import JobName


def test_the_job_names_are_the_strings_existing_databases_hold() -> None:
    assert {j.value for j in JobName} == {
        "health",
        "alert",
        "mark_pending",
        "unis_recheck",
        "weekly_summary",
        "unis_reminder",
        "progress_unmatched",
        "jimu_worklist",
    }


def test_a_job_name_compares_and_formats_as_its_stored_string() -> None:
    assert JobName.WEEKLY_SUMMARY == "weekly_summary"
    assert f"{JobName.ALERT}" == "alert"
    assert JobName("mark_pending") is JobName.MARK_PENDING
