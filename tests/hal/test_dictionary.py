import json

import pytest

from hal.dictionary import (
    ArgSpec,
    ArgumentError,
    CommandSpec,
    Dictionary,
    EventSpec,
    ParameterSpec,
    Severity,
    TelemetrySpec,
    validate_args,
)

SWITCH = CommandSpec("power.switch", "Switch a load", (
    ArgSpec("channel", "int", "Load channel", min=0, max=7),
    ArgSpec("on", "bool"),
))
SET = CommandSpec("acc.set", "Set things", (
    ArgSpec("state", "enum", values=("off", "idle", "on")),
    ArgSpec("gain", "float", unit="dB", min=-3.0, max=3.0, default=0.0, required=False),
))


def test_valid_arguments_pass_and_defaults_fill_in() -> None:
    assert validate_args(SWITCH, {"channel": 3, "on": True}) == {"channel": 3, "on": True}
    assert validate_args(SET, {"state": "idle"}) == {"state": "idle", "gain": 0.0}


@pytest.mark.parametrize("spec,args,reason", [
    (SWITCH, {"channel": 8, "on": True}, "channel = 8 is above the maximum 7"),
    (SWITCH, {"channel": -1, "on": True}, "below the minimum 0"),
    (SWITCH, {"channel": 2.5, "on": True}, "must be an integer"),
    (SWITCH, {"channel": True, "on": True}, "must be an integer"),
    (SWITCH, {"channel": 1, "on": 1}, "must be true or false"),
    (SWITCH, {"on": True}, "missing argument 'channel'"),
    (SWITCH, {"channel": 1, "on": True, "chanel": 1}, "unknown argument 'chanel'"),
    (SET, {"state": "max"}, "must be one of off, idle, on"),
    (SET, {"state": "on", "gain": float("nan")}, "must be finite"),
    (SET, {"state": "on", "gain": 4}, "gain = 4.0 dB is above the maximum 3.0 dB"),
])
def test_bad_arguments_are_rejected_with_the_reason(spec, args, reason) -> None:
    with pytest.raises(ArgumentError, match=reason):
        validate_args(spec, args)


def test_json_round_trip_keeps_every_declaration() -> None:
    d = Dictionary(
        commands=(SWITCH, SET),
        telemetry=(TelemetrySpec("power.batt_v", "float", "Battery", "V"),),
        events=(EventSpec("power.switch_changed", Severity.INFO, "Switched"),),
        parameters=(ParameterSpec("power.floor", "float", 30.0, "Floor", "%", 0.0, 100.0),),
    )
    again = Dictionary.from_json(json.loads(json.dumps(d.to_json())))
    assert again == d
    assert again.command("acc.set").args[0].values == ("off", "idle", "on")


def test_unknown_command_lookup_and_bad_json_are_clear() -> None:
    with pytest.raises(ArgumentError, match="unknown command 'power.swtich'"):
        Dictionary(commands=(SWITCH,)).command("power.swtich")
    with pytest.raises(ValueError, match="not a skyrack dictionary"):
        Dictionary.from_json({"commands": [{"name": "x"}]})


def test_limits_travel_in_the_dictionary_and_classify_values() -> None:
    from flight.software import FlightSoftware
    from hal.dictionary import Dictionary

    dictionary = FlightSoftware.dictionary()
    soc = next(t for t in dictionary.telemetry if t.name == "power.soc_pct")
    assert (soc.yellow, soc.red) == ((40.0, None), (30.0, None))  # no upper limit
    assert [soc.limit_state(v) for v in (50.0, 35.0, 25.0, 100.0)] == [
        "ok", "yellow", "red", "ok"]
    volts = next(t for t in dictionary.telemetry if t.name == "power.batt_v")
    assert volts.limit_state(33.8) == "yellow" and volts.limit_state(34.5) == "red"
    assert Dictionary.from_json(dictionary.to_json()) == dictionary
