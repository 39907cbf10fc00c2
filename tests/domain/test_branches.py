import pytest

from mailbot.domain.branches import Branch, BranchDirectory

DIRECTORY = BranchDirectory(
    [
        Branch("渋谷支店", aliases=("シブヤ",), managers=("mgr@usen.co.jp",)),
        Branch("新宿支店"),
        Branch("新宿南支店"),
    ]
)


@pytest.mark.parametrize("text", ["渋谷支店", "渋谷", "シブヤ", "ｼﾌﾞﾔ支店", "渋谷 支店"])
def test_a_branch_is_found_by_name_or_alias_with_or_without_the_suffix(text: str) -> None:
    branch = DIRECTORY.get(text)
    assert branch is not None
    assert branch.name == "渋谷支店"


def test_an_unknown_branch_is_not_found() -> None:
    assert DIRECTORY.get("名古屋支店") is None


def test_prefix_matching_prefers_the_longest_name() -> None:
    match = DIRECTORY.match_prefix("新宿南支店 追加")
    assert match is not None and match.name == "新宿南支店"


def test_two_branches_may_not_share_an_alias() -> None:
    with pytest.raises(ValueError, match="渋谷"):
        BranchDirectory([Branch("渋谷支店"), Branch("道玄坂支店", aliases=("渋谷",))])


def test_weekly_recipients_fall_back_to_the_managers() -> None:
    assert Branch("A支店", managers=("m@x.jp",)).weekly_recipients == ("m@x.jp",)
    assert Branch("A支店", managers=("m@x.jp",), summary_recipients=("s@x.jp",)).weekly_recipients == ("s@x.jp",)
