"""The dictionary as XTCE 1.2 (OMG XML Telemetric and Command Exchange), so a standard
ground system can decode our telemetry and encode our commands.

The root SpaceSystem holds the packet structure: the CCSDS primary header and the
PUS-C TM and TC secondary headers as abstract containers, the housekeeping structures
(TM[3,25], one per component, told apart by their structure id) and the commands
(TC[8,1], told apart by their function id). Each component is a child SpaceSystem
holding its parameters, so `power.batt_v` is `/skyrack/power/batt_v`. A TC also carries
the security header (key id, counter) as arguments, and a 16-octet MAC and the CRC as
trailing fields that the ground system's security layer must fill (hal.auth).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hal.dictionary import Dictionary
from hal.layout import Layouts, name_id
from hal.pus import APID
from hal.valuetype import STR_BYTES, ValueType

NS = "http://www.omg.org/spec/XTCE/20180204"
ROOT = "skyrack"
BE = "mostSignificantByteFirst"  # of the headers' unsigned fields


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


def to_xtce(dictionary: Dictionary, name: str = ROOT) -> str:
    """The XTCE document, as text."""
    ET.register_namespace("xtce", NS)
    layouts = Layouts(dictionary)
    root = ET.Element(_q("SpaceSystem"), {"name": name})
    _describe(root, "skyrack flight software: CCSDS space packets, PUS-C services")
    tm = _sub(root, "TelemetryMetaData")
    _types(_sub(tm, "ParameterTypeSet"), "Parameter", {})
    params = _sub(tm, "ParameterSet")
    for field, bits in HEADER + TM_SECONDARY + (("hk_sid", 16),):
        _sub(params, "Parameter", name=field, parameterTypeRef=f"uint{bits}")
    containers = _sub(tm, "ContainerSet")
    packet = _sub(containers, "SequenceContainer", name="ccsds_packet", abstract="true")
    entries = _sub(packet, "EntryList")
    for field, _ in HEADER:
        _sub(entries, "ParameterRefEntry", parameterRef=field)
    pus = _sub(containers, "SequenceContainer", name="pus_tm", abstract="true")
    entries = _sub(pus, "EntryList")
    for field, _ in TM_SECONDARY:
        _sub(entries, "ParameterRefEntry", parameterRef=field)
    base = _sub(pus, "BaseContainer", containerRef="ccsds_packet")
    criteria = _sub(_sub(base, "RestrictionCriteria"), "ComparisonList")
    for field, value in (("ccsds_type", "0"), ("ccsds_apid", str(APID))):
        _sub(criteria, "Comparison", parameterRef=field, value=value)

    children: dict[str, ET.Element] = {}

    def component(component_name: str) -> ET.Element:
        if component_name not in children:
            child = ET.SubElement(root, _q("SpaceSystem"), {"name": component_name})
            children[component_name] = child
        return children[component_name]

    for structure in layouts.structures.values():
        ctm = _sub(component(structure.name), "TelemetryMetaData")
        types, pset = _sub(ctm, "ParameterTypeSet"), _sub(ctm, "ParameterSet")
        for point in structure.points:
            local = point.name.split(".", 1)[1]
            _value_type(types, "Parameter", f"{local}_t", point.type, point.unit,
                        point.values)
            p = _sub(pset, "Parameter", name=local, parameterTypeRef=f"{local}_t")
            _describe(p, point.description)
        hk = _sub(containers, "SequenceContainer", name=f"hk_{structure.name}")
        _describe(hk, f"TM[3,25] housekeeping of {structure.name}, structure id "
                      f"0x{structure.sid:04x}")
        entries = _sub(hk, "EntryList")
        _sub(entries, "ParameterRefEntry", parameterRef="hk_sid")
        for point in structure.points:
            _sub(entries, "ParameterRefEntry",
                 parameterRef=f"/{name}/{point.name.replace('.', '/')}")
        base = _sub(hk, "BaseContainer", containerRef="pus_tm")
        criteria = _sub(_sub(base, "RestrictionCriteria"), "ComparisonList")
        for field, value in (("pus_service", "3"), ("pus_subtype", "25"),
                             ("hk_sid", str(structure.sid))):
            _sub(criteria, "Comparison", parameterRef=field, value=value)

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
