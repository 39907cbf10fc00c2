from mailbot.domain.jobs import JOB_LABELS, JobName, job_label


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


def test_every_job_of_the_scheduler_has_a_japanese_label() -> None:
    from mailbot.entrypoints.scheduler import JOB_IDS

    for job_id in (*JOB_IDS, "weekly_summary_retry", "wakeup"):
        label = job_label(job_id)
        assert label != "その他の処理" and label.isascii() is False, job_id
    assert JOB_LABELS["poll"] == "メールの確認と送信"
    assert job_label("a_future_job") == "その他の処理"
