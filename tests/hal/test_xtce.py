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
from hal.spacepacket import Telemetry, encode_tm
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


def read(bits: Bits, t: ET.Element):
    tag = t.tag.split("}")[1]
    if tag.startswith("Float"):
        return struct.unpack(">d", bits.take(64).to_bytes(8, "big"))[0]
    if tag.startswith("String"):
        n = int(t.find(".//x:FixedValue", X).text)
        return bits.take(n).to_bytes(n // 8, "big").rstrip(b"\0").decode()
    enc = t.find("x:IntegerDataEncoding", X)
    n = int(enc.get("sizeInBits"))
    raw = bits.take(n)
    if enc.get("encoding") == "twosComplement" and raw >> (n - 1):
        raw -= 1 << n
    if tag.startswith("Enumerated"):
        labels = {int(e.get("value")): e.get("label")
                  for e in t.findall("x:EnumerationList/x:Enumeration", X)}
        return labels[raw]
    return bool(raw) if tag.startswith("Boolean") else raw  # (arguments only)


def decode(doc: ET.Element, packet: bytes) -> dict:
    """As an XTCE processor does it: read the root container's entries, then descend
    into the one container based on it whose restriction holds for what has been read
    so far, and so on until a concrete container is read."""
    tm = doc.find("x:TelemetryMetaData", X)
    types = {t.get("name"): t for t in tm.find("x:ParameterTypeSet", X)}
    params = {p.get("name"): types[p.get("parameterTypeRef")]
              for p in tm.findall("x:ParameterSet/x:Parameter", X)}
    containers = tm.findall("x:ContainerSet/x:SequenceContainer", X)
    bits, values = Bits(packet), {}
    current = next(c for c in containers if c.find("x:BaseContainer", X) is None)
    while True:
        for entry in current.findall("x:EntryList/x:ParameterRefEntry", X):
            values[entry.get("parameterRef")] = read(bits, params[entry.get("parameterRef")])
        children = [c for c in containers
                    if (b := c.find("x:BaseContainer", X)) is not None
                    and b.get("containerRef") == current.get("name")
                    and all(str(values.get(cmp.get("parameterRef"))) == cmp.get("value")
                            for cmp in b.findall(".//x:Comparison", X))]
        if not children:
            assert current.get("abstract") != "true", f"no container under {current.get('name')}"
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
                         else True if a.type == "bool" else 1.5) for a in spec.args}
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


def test_an_independent_xtce_decoder_reads_every_point_as_our_ground_does(tmp_path) -> None:
    """space-packet-parser, given only the exported XTCE, decodes a recorded stream of the
    flight software's housekeeping; every value equals what our ground decodes."""
    import space_packet_parser as spp

    from boards.definition import default_path, load
    from ground.client import GroundClient
    from hal.packetlink import InProcessLink
    from hal.spacepacket import decode_tm
    from skyrack.assembly import assemble

    path = tmp_path / "skyrack.xml"
    path.write_text(to_xtce(DICTIONARY))
    theirs = spp.load_xtce(path)
    flight_end, ground_end = InProcessLink.pair()
    satellite = assemble(load(default_path()), seed=1, link=flight_end)
    try:
        satellite.flight.submit("power.switch", {"channel": 2, "on": True})
        satellite.run_until(4.0)
    finally:
        satellite.close()
    ours = GroundClient(ground_end, DICTIONARY, None)
    checked, seen = 0, set()
    for packet in ground_end.receive():
        tm = decode_tm(packet)
        if (tm.service, tm.subtype) != (3, 25):
            continue
        parsed = theirs.parse_bytes(packet[:-2], root_container_name="ccsds_packet")
        for name, value in ours.decode_hk(tm.data).items():
            spec = next(t for t in DICTIONARY.telemetry if t.name == name)
            got = parsed[xtce_name(name)]
            if value is None:  # not yet sampled: the marker, as the XTCE describes it
                assert got in ("unsampled", "") or got != got or got == -(2**63), name
            else:
                expected = str(value).lower() if spec.type == "bool" else value
                assert got == expected, (name, got, value)
                seen.add(name)
            checked += 1
    assert checked >= 3 * len(DICTIONARY.telemetry)  # each point, several times
    assert len(seen) > 0.8 * len(DICTIONARY.telemetry)  # nearly every point had a value
