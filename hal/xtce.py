"""The dictionary as XTCE 1.2 (OMG XML Telemetric and Command Exchange), so a standard
ground system can decode our telemetry and encode our commands.

One SpaceSystem holds it all (so that decoders without nested space systems read it
too): the CCSDS primary header and the PUS-C TM and TC secondary headers as abstract
containers, the housekeeping structures (TM[3,25], one per component, told apart by
their structure id, which an abstract container above them reads first, as XTCE
evaluates a base container's restriction on what the base has read) and the commands
(TC[8,1], told apart by their function id). `power.batt_v` is the parameter
`power_batt_v`, with its dictionary name as an alias. A TC also carries
the security header (key id, counter) as arguments, and a 16-octet MAC and the CRC as
trailing fields that the ground system's security layer must fill (hal.auth).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hal.dictionary import Dictionary
from hal.layout import Layouts, name_id
from hal.pus import APID
from hal.valuetype import STR_BYTES, UINT8_INVALID, ValueType

NS = "http://www.omg.org/spec/XTCE/20180204"
ROOT = "skyrack"
BE = "mostSignificantByteFirst"  # of the headers' unsigned fields
UNSAMPLED = "unsampled"  # the label of an enumerated point no component has published yet


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, _q(tag), {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _describe(element: ET.Element, text: str) -> None:
    if text:
        element.set("shortDescription", " ".join(text.split())[:256])


def _integer_type(parent: ET.Element, kind: str, name: str, bits: int, signed: bool) -> None:
    t = _sub(parent, f"Integer{kind}Type", name=name, signed=str(signed).lower(),
             sizeInBits=str(bits))
    _sub(t, "IntegerDataEncoding", sizeInBits=str(bits), byteOrder=BE,
         encoding="twosComplement" if signed else "unsigned")


def _value_type(parent: ET.Element, kind: str, name: str, spec_type: str,
                unit: str | None = None, values: tuple[str, ...] = ()) -> None:
    """The XTCE type of a dictionary value type (hal.valuetype); `kind` is "Parameter"
    or "Argument"."""
    value_type = ValueType(spec_type)
    if value_type is ValueType.BOOL and kind == "Parameter":
        # An enumeration, not a BooleanParameterType: a boolean point also has its
        # "not yet sampled" marker (0xFF), which a boolean type would read as true.
        value_type, values = ValueType.ENUM, ("false", "true")
    prefix, encoding, attrs = value_type.xtce
    t = _sub(parent, f"{prefix}{kind}Type", name=name,
             **({"signed": "true", "sizeInBits": "64"} if value_type is ValueType.INT else
                {"sizeInBits": "64"} if value_type is ValueType.FLOAT else {}))
    if unit:
        _sub(_sub(t, "UnitSet"), "Unit", unit)
    enc = _sub(t, encoding, **attrs)
    if value_type is ValueType.STR:
        size = _sub(enc, "SizeInBits")
        _sub(_sub(size, "Fixed"), "FixedValue", str(STR_BYTES * 8))
        _sub(size, "TerminationChar", "00")
    if values:
        enum_list = _sub(t, "EnumerationList")
        for i, value in enumerate(values):
            _sub(enum_list, "Enumeration", value=str(i), label=value)
        if kind == "Parameter":  # telemetry's "not yet sampled" marker (hal.valuetype)
            _sub(enum_list, "Enumeration", value=str(UINT8_INVALID), label=UNSAMPLED)


def _types(parent: ET.Element, kind: str, enums: dict[str, tuple[str, ...]]) -> None:
    """The data types every layout uses; `kind` is "Parameter" or "Argument"."""
    for bits in (1, 2, 3, 4, 8, 11, 14, 16, 32):
        _integer_type(parent, kind, f"uint{bits}", bits, False)
    for value_type in ValueType:
        if value_type is not ValueType.ENUM:
            _value_type(parent, kind, _type_ref(value_type, None), value_type)
    bin_t = _sub(parent, f"Binary{kind}Type", name="mac128")
    _sub(_sub(_sub(bin_t, "BinaryDataEncoding"), "SizeInBits"), "FixedValue", "128")
    for name, values in enums.items():
        _value_type(parent, kind, name, ValueType.ENUM, values=values)


def _type_ref(spec_type: str, enum_name: str | None) -> str:
    """The shared type of a value type, or for an enumeration its own."""
    shared = {ValueType.INT: "int64", ValueType.FLOAT: "float64", ValueType.BOOL: "bool8",
              ValueType.STR: f"string{STR_BYTES}"}
    return shared.get(ValueType(spec_type)) or enum_name or "uint8"


HEADER = (("ccsds_version", 3), ("ccsds_type", 1), ("ccsds_sec_hdr", 1), ("ccsds_apid", 11),
          ("ccsds_seq_flags", 2), ("ccsds_seq_count", 14), ("ccsds_length", 16))
TM_SECONDARY = (("pus_version", 4), ("pus_time_status", 4), ("pus_service", 8),
                ("pus_subtype", 8), ("pus_msg_counter", 16), ("pus_destination", 16),
                ("cuc_coarse", 32), ("cuc_fine", 16))
TC_SECONDARY = (("pus_version", 4), ("pus_ack_flags", 4), ("pus_service", 8),
                ("pus_subtype", 8), ("pus_source", 16), ("sdls_key_id", 16),
                ("sdls_counter", 32))


def xtce_name(name: str) -> str:
    """The XTCE name of a dictionary name: "power.batt_v" is power_batt_v (XTCE names
    hold no dots); each parameter also carries its dictionary name as an alias."""
    return name.replace(".", "_")


def to_xtce(dictionary: Dictionary, name: str = ROOT) -> str:
    """The XTCE document, as text."""
    ET.register_namespace("xtce", NS)
    layouts = Layouts(dictionary)
    root = ET.Element(_q("SpaceSystem"), {"name": name})
    _describe(root, "skyrack flight software: CCSDS space packets, PUS-C services")
    tm = _sub(root, "TelemetryMetaData")
    types = _sub(tm, "ParameterTypeSet")
    _types(types, "Parameter", {})
    params = _sub(tm, "ParameterSet")
    for field, bits in HEADER + TM_SECONDARY + (("hk_sid", 16),):
        _sub(params, "Parameter", name=field, parameterTypeRef=f"uint{bits}")
    for point in dictionary.telemetry:
        local = xtce_name(point.name)
        _value_type(types, "Parameter", f"{local}_t", point.type, point.unit, point.values)
        p = _sub(params, "Parameter", name=local, parameterTypeRef=f"{local}_t")
        _describe(p, point.description)
        _sub(_sub(p, "AliasSet"), "Alias", nameSpace=ROOT, alias=point.name)
    containers = _sub(tm, "ContainerSet")

    def sequence(name: str, entries: list[str], base: str | None = None,
                  where: tuple[tuple[str, str], ...] = (), abstract: bool = False,
                  description: str = "") -> None:
        """A SequenceContainer: its base container's restriction is evaluated on what
        that base has read, so each selector (type, APID, service, structure id) is an
        entry of the container above the one it selects."""
        c = _sub(containers, "SequenceContainer", name=name,
                 **({"abstract": "true"} if abstract else {}))
        _describe(c, description)
        entry_list = _sub(c, "EntryList")
        for entry in entries:
            _sub(entry_list, "ParameterRefEntry", parameterRef=entry)
        if base is not None:
            b = _sub(c, "BaseContainer", containerRef=base)
            if where:
                criteria = _sub(_sub(b, "RestrictionCriteria"), "ComparisonList")
                for field, value in where:
                    _sub(criteria, "Comparison", parameterRef=field, value=value)

    sequence("ccsds_packet", [f for f, _ in HEADER], abstract=True,
              description="CCSDS space packet primary header")
    sequence("pus_tm", [f for f, _ in TM_SECONDARY], "ccsds_packet",
              (("ccsds_type", "0"), ("ccsds_apid", str(APID))), abstract=True,
              description="PUS-C TM secondary header; time is CUC 4+2 (seconds, 2^-16 s)")
    sequence("hk", ["hk_sid"], "pus_tm", (("pus_service", "3"), ("pus_subtype", "25")),
              abstract=True, description="TM[3,25] housekeeping: the structure id")
    for structure in layouts.structures.values():
        sequence(f"hk_{structure.name}", [xtce_name(p.name) for p in structure.points], "hk",
                  (("hk_sid", str(structure.sid)),),
                  description=f"TM[3,25] housekeeping of {structure.name}, structure id "
                              f"0x{structure.sid:04x}")

    cmd = _sub(root, "CommandMetaData")
    enums = {f"{c.name.replace('.', '_')}_{a.name}": a.values
             for c in dictionary.commands for a in c.args if a.type is ValueType.ENUM}
    _types(_sub(cmd, "ArgumentTypeSet"), "Argument", enums)
    commands = _sub(cmd, "MetaCommandSet")
    tc = _sub(commands, "MetaCommand", name="pus_tc", abstract="true")
    args = _sub(tc, "ArgumentList")
    for field, bits in HEADER + TC_SECONDARY + (("function_id", 16),):
        _sub(args, "Argument", name=field, argumentTypeRef=f"uint{bits}")
    container = _sub(tc, "CommandContainer", name="pus_tc")
    entries = _sub(container, "EntryList")
    for field, _ in HEADER + TC_SECONDARY + (("function_id", 16),):
        _sub(entries, "ArgumentRefEntry", argumentRef=field)
    for spec in dictionary.commands:
        mc = _sub(commands, "MetaCommand", name=spec.name.replace(".", "_"))
        _describe(mc, spec.description)
        base = _sub(mc, "BaseMetaCommand", metaCommandRef="pus_tc")
        assignments = _sub(base, "ArgumentAssignmentList")
        for field, value in (("ccsds_type", "1"), ("ccsds_sec_hdr", "1"),
                             ("ccsds_apid", str(APID)), ("ccsds_seq_flags", "3"),
                             ("pus_version", "2"), ("pus_service", "8"), ("pus_subtype", "1"),
                             ("function_id", str(name_id(spec.name)))):
            _sub(assignments, "ArgumentAssignment", argumentName=field, argumentValue=value)
        arglist = _sub(mc, "ArgumentList")
        for a in spec.args:
            enum_name = f"{spec.name.replace('.', '_')}_{a.name}"
            arg = _sub(arglist, "Argument", name=a.name,
                       argumentTypeRef=_type_ref(a.type, enum_name))
            _describe(arg, a.description)
        mac = _sub(arglist, "Argument", name="sdls_mac", argumentTypeRef="mac128")
        _describe(mac, "HMAC-SHA-256 over the packet before it, first 16 octets (hal.auth)")
        _sub(arglist, "Argument", name="crc16", argumentTypeRef="uint16")
        body = _sub(mc, "CommandContainer", name=spec.name.replace(".", "_"))
        entries = _sub(body, "EntryList")
        for a in spec.args:
            _sub(entries, "ArgumentRefEntry", argumentRef=a.name)
        _sub(entries, "ArgumentRefEntry", argumentRef="sdls_mac")
        _sub(entries, "ArgumentRefEntry", argumentRef="crc16")
        _sub(body, "BaseContainer", containerRef="pus_tc")
        if spec.hazardous:
            _sub(mc, "DefaultSignificance", consequenceLevel="critical",
                 reasonForWarning="hazardous command")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
