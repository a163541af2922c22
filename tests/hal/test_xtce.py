"""The XTCE export, read by a small XTCE interpreter that knows nothing of skyrack: it
decodes housekeeping packets and encodes commands from the document alone, and must
agree with our own codecs."""

import struct
import xml.etree.ElementTree as ET

import pytest

from flight.software import FlightSoftware
from hal import layout
from hal.layout import Layouts
from hal.pus import APID, N
from hal.spacepacket import Telemetry, encode_tm
from hal.xtce import NS, to_xtce

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


def types_of(system: ET.Element) -> dict[str, ET.Element]:
    return {t.get("name"): t for t in system.findall("x:TelemetryMetaData/x:ParameterTypeSet/*", X)}


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
    return bool(raw) if tag.startswith("Boolean") else raw


def decode(doc: ET.Element, packet: bytes) -> dict:
    """Pick the concrete container whose restriction criteria match, and read it."""
    root_types = types_of(doc)
    params = {p.get("name"): root_types[p.get("parameterTypeRef")]
              for p in doc.findall("x:TelemetryMetaData/x:ParameterSet/x:Parameter", X)}
    for system in doc.findall("x:SpaceSystem", X):
        local = types_of(system)
        for p in system.findall("x:TelemetryMetaData/x:ParameterSet/x:Parameter", X):
            params[f"/skyrack/{system.get('name')}/{p.get('name')}"] = local[
                p.get("parameterTypeRef")]
    containers = {c.get("name"): c for c in doc.findall(".//x:SequenceContainer", X)}

    def chain(c: ET.Element) -> list[ET.Element]:
        base = c.find("x:BaseContainer", X)
        return (chain(containers[base.get("containerRef")]) if base is not None else []) + [c]

    for c in containers.values():
        if c.get("abstract") == "true":
            continue
        bits, values = Bits(packet), {}
        try:
            for part in chain(c):
                for entry in part.findall("x:EntryList/x:ParameterRefEntry", X):
                    ref = entry.get("parameterRef")
                    values[ref] = read(bits, params[ref])
        except (IndexError, UnicodeDecodeError):
            continue  # not this container's shape: another container
        criteria = [cmp for part in chain(c)
                    for cmp in part.findall(".//x:Comparison", X)]
        if all(str(values.get(cmp.get("parameterRef"))) == cmp.get("value") for cmp in criteria):
            return values
    raise AssertionError("no container matches")


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
            assert decoded[f"/skyrack/{point.name.replace('.', '/')}"] == value, point.name


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
