import json

from skyrack import campaign
from skyrack.cli import main


def test_a_campaign_finds_no_silent_corruption_and_handles_every_kind(capsys) -> None:
    code = main(["campaign", "--injections", "350", "--seed", "3", "--workers", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["outcomes"]["sdc"] == 0 and report["outcomes"]["due"] == 0
    assert sum(report["outcomes"].values()) == 350
    assert set(report["by_kind"]) == set(campaign.KINDS)
    for mechanism in ("scrub", "abft", "crc", "rollback"):
        assert report["outcomes"][mechanism] > 0, mechanism
    assert report["rollbacks"] >= report["by_kind"]["hang"]["rollback"]


def test_outcomes_do_not_depend_on_the_number_of_workers() -> None:
    one = campaign.campaign(120, seed=11, workers=1)
    two = campaign.campaign(120, seed=11, workers=2)
    for key in ("outcomes", "by_kind", "steps_lost", "steps_run", "rollbacks"):
        assert one[key] == two[key], key


def test_each_injection_is_the_same_for_a_seed_and_differs_across_seeds() -> None:
    assert campaign.trial(5, 17) == campaign.trial(5, 17)
    assert [campaign.trial(5, i) for i in range(20)] != [campaign.trial(6, i) for i in range(20)]


def test_the_human_table_and_bad_arguments(capsys) -> None:
    assert main(["campaign", "--injections", "20", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "silent data corruption (SDC)" in out and "by ABFT" in out
    try:
        main(["campaign", "--injections", "0"])
    except SystemExit as e:
        assert e.code == 2
    assert "argument --injections: 0 is outside 1..10000000" in capsys.readouterr().err
