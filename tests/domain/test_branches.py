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


def test_a_subject_naming_a_longer_branch_finds_it_whichever_order_the_branches_are_configured_in() -> None:
    for branches in ([Branch("新宿支店"), Branch("新宿南支店")], [Branch("新宿南支店"), Branch("新宿支店")]):
        directory = BranchDirectory(branches)
        south = directory.match_prefix("新宿南支店 株式会社さくら")
        assert south is not None and south.name == "新宿南支店"
        shinjuku = directory.match_prefix("新宿支店 株式会社さくら")
        assert shinjuku is not None and shinjuku.name == "新宿支店"


def test_a_subject_naming_no_configured_branch_matches_none() -> None:
    assert BranchDirectory([Branch("新宿支店")]).match_prefix("名古屋支店") is None


def test_the_directory_lists_its_branches_in_the_configured_order() -> None:
    branches = [Branch("渋谷支店"), Branch("大阪支店"), Branch("新宿支店")]
    directory = BranchDirectory(branches)
    assert list(directory) == branches
    assert directory.branches == tuple(branches)


def test_the_suffix_alone_is_not_stripped_so_no_branch_gets_an_empty_key() -> None:
    # An empty key would be a prefix of every subject.
    from mailbot.domain.branches import branch_key

    assert branch_key("支店") == "支店"
    assert branch_key("渋谷 支店") == "渋谷"
