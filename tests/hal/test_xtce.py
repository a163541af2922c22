"""The XTCE export, read by a small XTCE interpreter that knows nothing of skyrack: it
decodes housekeeping packets and encodes commands from the document alone, and must
agree with our own codecs."""

import pathlib
import struct
import xml.etree.ElementTree as ET

import pytest

from flight.software import FlightSoftware
from hal import layout
from hal.layout import Layouts
from hal.pus import APID, N
from hal.spacepacket import Telemetry, encode_tc, encode_tm
from hal.xtce import NS, to_xtce, xtce_name

X = {"x": NS}
DICTIONARY = FlightSoftware.dictionary()


@pytest.fixture(scope="module")
def doc() -> ET.Element:
    return ET.fromstring(to_xtce(DICTIONARY))


class Bits:
    def __init__(self, data: bytes) -> None:
        self.value, self.size, self.pos = int.from_bytes(data, "big"), len(data) * 8, 0

    def take(self, n: int) -> int:
        self.pos += n
        if self.pos > self.size:
            raise IndexError("past the end of the packet")
        return (self.value >> (self.size - self.pos)) & ((1 << n) - 1)


def read(bits: Bits, t: ET.Element, raws: dict) -> tuple:
    """(engineering value, raw value) of one parameter of type `t`; `raws` holds the
    raw values read so far (a dynamic size refers to one)."""
    tag = t.tag.split("}")[1]
    if tag.startswith("Float"):
        value = struct.unpack(">d", bits.take(64).to_bytes(8, "big"))[0]
        return value, value
    if tag.startswith("String") or tag.startswith("Binary"):
        fixed = t.find(".//x:FixedValue", X)
        if fixed is not None:
            n = int(fixed.text)
        else:  # a size another parameter gives: its raw value times the slope
            ref = t.find(".//x:DynamicValue/x:ParameterInstanceRef", X).get("parameterRef")
            slope = int(t.find(".//x:DynamicValue/x:LinearAdjustment", X).get("slope"))
            n = raws[ref] * slope
        raw = bits.take(n).to_bytes(n // 8, "big") if n else b""
        if tag.startswith("Binary"):
            return raw, raw
        text = (raw.split(b"\0", 1)[0] if fixed is not None else raw).decode()
        return text, raw
    enc = t.find("x:IntegerDataEncoding", X)
    n = int(enc.get("sizeInBits"))
    raw = bits.take(n)
    if enc.get("encoding") == "twosComplement" and raw >> (n - 1):
        raw -= 1 << n
    if tag.startswith("Enumerated"):
        labels = {int(e.get("value")): e.get("label")
                  for e in t.findall("x:EnumerationList/x:Enumeration", X)}
        return labels[raw], raw
    return (bool(raw) if tag.startswith("Boolean") else raw), raw  # (arguments only)


def decode(doc: ET.Element, packet: bytes) -> dict:
    """As an XTCE processor does it: read the root container's entries, then descend
    into the one container based on it whose restriction holds for what has been read
    so far, and so on until a concrete container is read."""
    tm = doc.find("x:TelemetryMetaData", X)
    types = {t.get("name"): t for t in tm.find("x:ParameterTypeSet", X)}
    params = {p.get("name"): types[p.get("parameterTypeRef")]
              for p in tm.findall("x:ParameterSet/x:Parameter", X)}
    containers = tm.findall("x:ContainerSet/x:SequenceContainer", X)
    bits, values, raws = Bits(packet), {}, {}

    def holds(cmp: ET.Element) -> bool:
        read_so_far = raws if cmp.get("useCalibratedValue") == "false" else values
        return str(read_so_far.get(cmp.get("parameterRef"))) == cmp.get("value")

    current = next(c for c in containers if c.find("x:BaseContainer", X) is None)
    while True:
        for entry in current.findall("x:EntryList/x:ParameterRefEntry", X):
            name = entry.get("parameterRef")
            values[name], raws[name] = read(bits, params[name], raws)
        children = [c for c in containers
                    if (b := c.find("x:BaseContainer", X)) is not None
                    and b.get("containerRef") == current.get("name")
                    and all(holds(cmp) for cmp in b.findall(".//x:Comparison", X))]
        if not children:
            assert current.get("abstract") != "true", f"no container under {current.get('name')}"
            assert bits.pos == bits.size, f"{current.get('name')} left octets unread"
            values["container"] = current.get("name")
            return values
        (current,) = children  # exactly one matches, or the document is ambiguous


def test_housekeeping_decodes_from_the_xtce_alone(doc) -> None:
    layouts = Layouts(DICTIONARY)
    for structure in layouts.structures.values():
        sample = {"int": 7, "float": -1.25, "str": "nominal", "bool": True}
        values = [p.values[-1] if p.values else sample[p.type] for p in structure.points]
        tm = Telemetry(APID, 3, 25, N.pack(structure.sid) + layout.pack(structure.points, values),
                       time_s=12.5)
        decoded = decode(doc, encode_tm(tm)[:-2])  # the CRC is not a parameter
        assert decoded["ccsds_apid"] == APID and decoded["cuc_coarse"] == 12
        for point, value in zip(structure.points, values, strict=True):
            expected = str(value).lower() if point.type == "bool" else value  # an enum
            assert decoded[xtce_name(point.name)] == expected, point.name


def test_commands_encode_from_the_xtce_alone(doc) -> None:
    layouts = Layouts(DICTIONARY)
    commands = {c.get("name"): c for c in doc.findall(".//x:MetaCommand", X)}
    for spec in DICTIONARY.commands:
        mc = commands[spec.name.replace(".", "_")]
        assigned = {a.get("argumentName"): int(a.get("argumentValue"))
                    for a in mc.findall(".//x:ArgumentAssignment", X)}
        args = {a.name: (a.values[-1] if a.type == "enum" else a.min or 0 if a.type == "int"
                         else True if a.type == "bool" else "déf" if a.type in ("str", "text")
                         else 1.5) for a in spec.args}
        arg_types = {t.get("name"): t for t in doc.findall(".//x:ArgumentTypeSet/*", X)}
        body = bytearray(assigned["function_id"].to_bytes(2, "big"))
        for entry in mc.findall("x:CommandContainer/x:EntryList/x:ArgumentRefEntry", X):
            name = entry.get("argumentRef")
            if name in ("sdls_mac", "crc16"):
                continue
            arg = mc.find(f"x:ArgumentList/x:Argument[@name='{name}']", X)
            t = arg_types[arg.get("argumentTypeRef")]
            tag = t.tag.split("}")[1]
            if tag.startswith("Enumerated"):
                labels = {e.get("label"): int(e.get("value"))
                          for e in t.iter(f"{{{NS}}}Enumeration")}
                body += bytes([labels[args[name]]])
            elif tag.startswith("Float"):
                body += struct.pack(">d", args[name])
            elif tag.startswith("Boolean"):
                body += bytes([int(args[name])])
            elif tag.startswith("String"):  # fixed size, UTF-8, NUL-padded
                size = int(t.find(".//x:FixedValue", X).text) // 8
                body += args[name].encode().ljust(size, b"\0")
            else:
                body += struct.pack(">q", args[name])
        assert bytes(body) == layouts.pack_command(spec.name, args), spec.name
        assert (assigned["pus_service"], assigned["pus_subtype"]) == (8, 1)
        hazardous = mc.find("x:DefaultSignificance", X) is not None
        assert hazardous == spec.hazardous, spec.name


def test_skyrack_dictionary_xtce_prints_the_document(capsys) -> None:
    from skyrack.cli import main

    assert main(["dictionary", "--xtce"]) == 0
    out = capsys.readouterr().out
    assert ET.fromstring(out).get("name") == "skyrack"
    assert out == to_xtce(DICTIONARY) + "\n"


def test_the_xtce_is_valid_against_the_xtce_1_2_schema(tmp_path) -> None:
    import space_packet_parser as spp

    xsd = pathlib.Path(spp.__file__).parent / "xtce" / "schemas" / "SpaceSystem.xsd"
    path = tmp_path / "skyrack.xml"
    path.write_text(to_xtce(DICTIONARY))
    result = spp.validate_xtce(path, level="schema", local_xsd=xsd, print_results=False,
                               raise_on_error=False, allow_schema_download=False)
    assert result.valid, [str(e) for e in result.errors]


# -- a recorded stream of every kind of TM, decoded from the XTCE alone ------------------

@pytest.fixture(scope="module")
def recorded() -> list[bytes]:
    """What the flight software sent while commanded through every service it answers:
    housekeeping, events, reports of success and of each kind of failure, a parameter
    report, a schedule summary, an are-you-alive answer."""
    from boards.definition import default_path, load
    from ground.client import GroundClient, Signer
    from hal.auth import KeyFile
    from hal.packetlink import InProcessLink
    from skyrack.assembly import assemble

    keys = KeyFile(1, {1: bytes(range(32))})
    flight_end, ground_end = InProcessLink.pair()
    satellite = assemble(load(default_path()), seed=1, link=flight_end, keys=keys)
    tap: list[bytes] = []
    ground = GroundClient(ground_end, DICTIONARY, Signer(1, keys.keys[1]))
    ground.on_tm.append(lambda tm, packet: tap.append(packet))
    try:
        ground.command("power.switch", {"channel": 2, "on": True})
        ground.command("compute.cancel", {"job": 7})  # fails: no such job
        ground.command("thermal.heater", {"heater": 1, "on": True})
        ground.get_parameters("link.replay_window")
        ground.service(17, 1)
        ground.time_tagged(30.0, "fsw.noop")
        ground.service(11, 17)
        ground.link.send(encode_tc(ground.telecommand(17, 1)))  # unsigned: refused
        for _ in range(40):
            satellite.run_until(satellite.clock.now_s() + 0.25)
            ground.poll()
    finally:
        satellite.close()
    return tap


def _expected(tm, ground) -> dict:
    """What our ground makes of `tm`, keyed by the XTCE's names."""
    from hal.pus import FAILURE_NAMES, parse_verification

    if (tm.service, tm.subtype) == (3, 25):
        return {xtce_name(k): v for k, v in ground.decode_hk(tm.data).items()}
    if tm.service == 5:
        event = ground.decode_event(tm)
        spec = Layouts(DICTIONARY).events[layout.name_id(event.name)]
        local = f"event_{xtce_name(event.name)}"
        return {"container": local, "event_id": event.name,
                **{f"{local}_{a.name}": event.args.get(a.name) for a in spec.args}}
    if tm.service == 1:
        report = parse_verification(tm.subtype, tm.data)
        out = {"container": f"tm_1_{tm.subtype}", "req_apid": report.apid,
               "req_seq_count": report.seq_count}
        if report.code:
            out |= {"failure_code": FAILURE_NAMES[report.code],
                    "failure_reason": report.reason}
        return out
    if (tm.service, tm.subtype) == (20, 2):
        ((name, value),) = ground.parameter_values(tm).items()
        return {"container": f"tm_20_2_{xtce_name(name)}", "param_id": name,
                f"param_{xtce_name(name)}": value}
    if (tm.service, tm.subtype) == (11, 13):
        return {"container": "tm_11_13", "schedule_count": N.unpack_from(tm.data)[0]}
    return {"container": f"tm_{tm.service}_{tm.subtype}"}


def _same(got, expected) -> bool:
    if expected is None:  # not yet sampled, or left out: the marker the XTCE names
        return got in ("unsampled", "", -(2**63)) or got != got
    return got == (str(expected).lower() if isinstance(expected, bool) else expected)


def test_every_kind_of_tm_decodes_from_the_xtce_alone_as_our_ground_decodes_it(
        doc, recorded) -> None:
    from ground.client import GroundClient
    from hal.packetlink import InProcessLink
    from hal.spacepacket import decode_tm

    ground = GroundClient(InProcessLink(), DICTIONARY, None)
    kinds = set()
    for packet in recorded:
        tm = decode_tm(packet)
        decoded = decode(doc, packet[:-2])
        for name, value in _expected(tm, ground).items():
            assert _same(decoded[name], value), (tm.service, tm.subtype, name,
                                                 decoded[name], value)
        kinds.add(decoded.get("container", "hk")[:8])
    assert {"tm_1_1", "tm_1_2", "tm_1_3", "tm_1_7", "tm_1_8", "tm_11_13", "tm_17_2",
            "tm_20_2_", "event_fs", "event_th"} <= kinds


def _alarm(ranges: ET.Element, value: float) -> str:
    """What an XTCE processor's static alarm ranges make of `value`."""
    for tag, name in (("x:CriticalRange", "red"), ("x:WarningRange", "yellow")):
        r = ranges.find(tag, X)
        if r is None:
            continue
        low, high = r.get("minInclusive"), r.get("maxInclusive")
        if (low is not None and value < float(low)) or (high is not None and value > float(high)):
            return name
    return "ok"


def test_every_point_with_limits_carries_them_as_its_alarm(doc) -> None:
    """Wherever our ground colours a value yellow or red, the XTCE's alarm ranges say
    warning or critical (rangeForm "outside": a value outside the range alarms)."""
    types = {t.get("name"): t for t in doc.find("x:TelemetryMetaData/x:ParameterTypeSet", X)}
    limited = [p for p in DICTIONARY.telemetry if p.yellow or p.red]
    assert len(limited) >= 5
    for point in limited:
        ranges = types[f"{xtce_name(point.name)}_t"].find("x:DefaultAlarm/x:StaticAlarmRanges",
                                                           X)

        bounds = [b for lim in (point.yellow, point.red) if lim for b in lim if b is not None]
        for value in [b + d for b in bounds for d in (-0.01, 0.0, 0.01)]:
            assert _alarm(ranges, value) == point.limit_state(value), (point.name, value)


def test_command_arguments_carry_their_ranges_units_and_defaults(doc) -> None:
    types = {t.get("name"): t for t in doc.find("x:CommandMetaData/x:ArgumentTypeSet", X)}
    commands = {c.get("name"): c for c in doc.findall(".//x:MetaCommand", X)}
    checked = 0
    for spec in DICTIONARY.commands:
        mc = commands[xtce_name(spec.name)]
        for a in spec.args:
            t = types[f"{xtce_name(spec.name)}_{a.name}_t"]
            valid = t.find("x:ValidRangeSet/x:ValidRange", X)
            if a.min is not None:
                assert float(valid.get("minInclusive")) == a.min, (spec.name, a.name)
            if a.max is not None:
                assert float(valid.get("maxInclusive")) == a.max, (spec.name, a.name)
            unit = t.find("x:UnitSet/x:Unit", X)
            assert (unit.text if unit is not None else None) == a.unit, (spec.name, a.name)
            arg = mc.find(f"x:ArgumentList/x:Argument[@name='{a.name}']", X)
            if not a.required and a.default is not None:
                default = a.default
                assert arg.get("initialValue") == (str(default).lower()
                                                   if isinstance(default, bool)
                                                   else str(default)), (spec.name, a.name)
            checked += 1
        verifiers = mc.find("x:VerifierSet", X)
        assert [v.get("name") for v in verifiers] == ["Accepted", "Started", "Completed"]
        for v, stage in zip(verifiers, (1, 3, 7), strict=True):
            assert f"stage: {stage}," in v.find(".//x:AlgorithmText", X).text
            inputs = [i.get("parameterRef") for i in v.iter(f"{{{NS}}}InputParameterInstanceRef")]
            assert inputs[2:5] == ["req_apid", "req_seq_count", "pus_subtype"]
    assert checked > 10


def test_an_independent_xtce_decoder_reads_every_packet_as_our_ground_does(
        tmp_path, recorded) -> None:
    """space-packet-parser, given only the exported XTCE, decodes the recorded stream:
    housekeeping, events, verification reports, replies; every value it reads equals
    what our ground decodes."""
    import space_packet_parser as spp

    from ground.client import GroundClient
    from hal.packetlink import InProcessLink
    from hal.spacepacket import decode_tm

    path = tmp_path / "skyrack.xml"
    path.write_text(to_xtce(DICTIONARY))
    theirs = spp.load_xtce(path)
    ground = GroundClient(InProcessLink(), DICTIONARY, None)
    checked, sampled, kinds = 0, set(), set()
    for packet in recorded:
        tm = decode_tm(packet)
        parsed = theirs.parse_bytes(packet[:-2], root_container_name="ccsds_packet")
        for name, value in _expected(tm, ground).items():
            if name == "container":
                kinds.add(value[:8])
                continue
            got = parsed[name]
            assert _same(got, value), (tm.service, tm.subtype, name, got, value)
            checked += 1
            if value is not None and (tm.service, tm.subtype) == (3, 25):
                sampled.add(name)
    assert checked >= 3 * len(DICTIONARY.telemetry)  # each point, several times
    assert len(sampled) > 0.8 * len(DICTIONARY.telemetry)  # nearly every point had a value
    assert {"tm_1_1", "tm_1_2", "tm_1_7", "tm_1_8", "tm_20_2_", "event_fs"} <= kinds
