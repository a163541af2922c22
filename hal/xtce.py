"""The dictionary as XTCE 1.2 (OMG XML Telemetric and Command Exchange), so a standard
ground system can decode our telemetry and encode our commands.

One SpaceSystem holds it all (so that decoders without nested space systems read it
too). Telemetry: the CCSDS primary header and the PUS-C TM secondary header as
abstract containers, and under them one container per kind of packet, each chosen by
a restriction on what the container above it has read (as XTCE evaluates a base
container's restriction):

    hk_<component>     TM[3,25] housekeeping, by structure id (abstract "hk")
    event_<name>       TM[5,x] an event and its declared arguments, by event id
                       (abstract "event"; the event id an enumeration of every name)
    tm_1_<subtype>     TM[1,x] verification: the request id, and for a failure the
                       failure code (an enumeration) and the reason
    tm_11_13           TM[11,13] schedule summary: the count, and its items as octets
    tm_15_13           TM[15,13] packet store summary
    tm_17_2            TM[17,2] are-you-alive answer
    tm_20_2_<param>    TM[20,2] parameter report, by the first parameter's id

Every point, event argument and on-board parameter is a parameter (`power.batt_v` is
`power_batt_v`, with its dictionary name as an alias); points with limits carry them
as the default alarm (yellow: warning, red: critical, outside the range), enumerated
and boolean points also have the "unsampled" label for the "not yet sampled" marker
0xFF, integers INT64_MIN and floats NaN (hal.valuetype). Time is CUC 4+2 (a P-field
that is implicit, not in the packet: 4 octets of seconds and 2 of 2^-16 s since the
satellite's time reference) in `cuc_coarse` and `cuc_fine`.

Commands are TC[8,1], told apart by function id; each argument has its own type with
its unit and range, and its default as the initial value. The XTCE describes the TC
unsigned, as SDLS puts its security header and MAC below the application layer: a
ground system sends its TCs through `skyrack ground gateway`, which signs them
(hal.auth). The sequence count, length and CRC are the ground system's to fill (fixed
entries here). Each command's verifiers match the service 1 reports on it by APID and
sequence count (YAMCS's PUS-1 verifier algorithm); a report of failure fails the
stage with its failure code and reason.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from hal.dictionary import ArgSpec, Dictionary, TelemetrySpec
from hal.layout import Layouts, name_id
from hal.pus import APID, FAILURES
from hal.valuetype import UINT8_INVALID, ValueType

NS = "http://www.omg.org/spec/XTCE/20180204"
ROOT = "skyrack"
BE = "mostSignificantByteFirst"  # of the headers' unsigned fields
UNSAMPLED = "unsampled"  # the label of an enumerated point no component has published yet
MAX_REASON_BITS = 1024 * 8  # a failure reason is cut at 1024 octets (hal.pus)
SCHEDULE_ITEM_BITS = 12 * 8  # TM[11,13]: release time CUC 4+2, APID, sequence count, function
VERIFY_WITHIN = "PT30S"  # how long a command's verifiers wait for each report


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


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def xtce_name(name: str) -> str:
    """The XTCE name of a dictionary name: "power.batt_v" is power_batt_v (XTCE names
    hold no dots); each parameter also carries its dictionary name as an alias."""
    return name.replace(".", "_")


# -- types ------------------------------------------------------------------------------

def _integer_type(parent: ET.Element, kind: str, name: str, bits: int, signed: bool) -> None:
    t = _sub(parent, f"Integer{kind}Type", name=name, signed=str(signed).lower(),
             sizeInBits=str(bits))
    _sub(t, "IntegerDataEncoding", sizeInBits=str(bits), byteOrder=BE,
         encoding="twosComplement" if signed else "unsigned")


def _enumerated(parent: ET.Element, kind: str, name: str, bits: int,
                labels: Sequence[tuple[int, str]], description: str = "") -> None:
    t = _sub(parent, f"Enumerated{kind}Type", name=name)
    _describe(t, description)
    _sub(t, "IntegerDataEncoding", sizeInBits=str(bits), byteOrder=BE, encoding="unsigned")
    enum_list = _sub(t, "EnumerationList")
    for value, label in labels:
        _sub(enum_list, "Enumeration", value=str(value), label=label)


def _value_type(parent: ET.Element, kind: str, name: str, spec: Any | None,
                value_type: ValueType) -> None:
    """The XTCE type of one declaration (a point, an argument, a parameter) or, without
    `spec`, the shared type of `value_type`; `kind` is "Parameter" or "Argument"."""
    values: tuple[str, ...] = spec.values if spec is not None else ()
    if value_type is ValueType.BOOL and kind == "Parameter":
        # An enumeration, not a BooleanParameterType: a boolean point also has its
        # "not yet sampled" marker (0xFF), which a boolean type would read as true.
        value_type, values = ValueType.ENUM, ("false", "true")
    prefix, encoding, attrs = value_type.xtce
    t = _sub(parent, f"{prefix}{kind}Type", name=name,
             **({"signed": "true", "sizeInBits": "64"} if value_type is ValueType.INT else
                {"sizeInBits": "64"} if value_type is ValueType.FLOAT else {}))
    unit = getattr(spec, "unit", None)
    if unit:
        _sub(_sub(t, "UnitSet"), "Unit", unit)
    enc = _sub(t, encoding, **attrs)
    if value_type.textual:
        size = _sub(enc, "SizeInBits")
        _sub(_sub(size, "Fixed"), "FixedValue", str(value_type.size * 8))
        _sub(size, "TerminationChar", "00")
    if values:
        enum_list = _sub(t, "EnumerationList")
        for i, value in enumerate(values):
            _sub(enum_list, "Enumeration", value=str(i), label=value)
        if kind == "Parameter":  # telemetry's "not yet sampled" marker (hal.valuetype)
            _sub(enum_list, "Enumeration", value=str(UINT8_INVALID), label=UNSAMPLED)
    if spec is None or not value_type.numeric:
        return
    integer = value_type is ValueType.INT
    if kind == "Argument" and (spec.min is not None or spec.max is not None):
        bounds = {k: _number(v, integer) for k, v in (("minInclusive", spec.min),
                                                      ("maxInclusive", spec.max))
                  if v is not None}
        _sub(_sub(t, "ValidRangeSet"), "ValidRange", **bounds)
    if kind == "Parameter" and isinstance(spec, TelemetrySpec) \
            and (spec.yellow is not None or spec.red is not None):
        ranges = _sub(_sub(t, "DefaultAlarm", minViolations="1"), "StaticAlarmRanges")
        for level, limits in (("WarningRange", spec.yellow), ("CriticalRange", spec.red)):
            if limits is not None:
                low, high = limits
                _sub(ranges, level, **{k: repr(float(v)) for k, v in
                                       (("minInclusive", low), ("maxInclusive", high))
                                       if v is not None})


SHARED = {ValueType.INT: "int64", ValueType.FLOAT: "float64", ValueType.BOOL: "bool8",
          ValueType.STR: f"string{ValueType.STR.size}",
          ValueType.TEXT: f"text{ValueType.TEXT.size}"}


def _shared_types(parent: ET.Element, kind: str) -> None:
    """The data types the headers and layouts share; `kind` is "Parameter" or
    "Argument"."""
    for bits in (1, 2, 3, 4, 8, 11, 14, 16, 32):
        _integer_type(parent, kind, f"uint{bits}", bits, False)
    for value_type, name in SHARED.items():
        _value_type(parent, kind, name, None, value_type)


HEADER = (("ccsds_version", 3), ("ccsds_type", 1), ("ccsds_sec_hdr", 1), ("ccsds_apid", 11),
          ("ccsds_seq_flags", 2), ("ccsds_seq_count", 14), ("ccsds_length", 16))
TM_SECONDARY = (("pus_version", 4), ("pus_time_status", 4), ("pus_service", 8),
                ("pus_subtype", 8), ("pus_msg_counter", 16), ("pus_destination", 16),
                ("cuc_coarse", 32), ("cuc_fine", 16))
TC_ARGUMENTS = (("ccsds_apid", 11, None), ("pus_ack_flags", 4, "15"), ("pus_service", 8, None),
                ("pus_subtype", 8, None), ("pus_source", 16, "0"), ("function_id", 16, None))
REQUEST = (("req_version", 3), ("req_type", 1), ("req_sec_hdr", 1), ("req_apid", 11),
           ("req_seq_flags", 2), ("req_seq_count", 14))  # a verified TC's packet ID and PSC
VERIFICATION = {1: "accepted", 2: "acceptance failed", 3: "started", 4: "start failed",
                7: "completed", 8: "completion failed"}
FAILED = (2, 4, 8)


class _Telemetry:
    """The TelemetryMetaData being written."""

    def __init__(self, root: ET.Element) -> None:
        tm = _sub(root, "TelemetryMetaData")
        self.types = _sub(tm, "ParameterTypeSet")
        self.params = _sub(tm, "ParameterSet")
        self.containers = _sub(tm, "ContainerSet")
        _shared_types(self.types, "Parameter")

    def parameter(self, name: str, type_ref: str, description: str = "",
                  alias: str | None = None, namespace: str = ROOT) -> None:
        p = _sub(self.params, "Parameter", name=name, parameterTypeRef=type_ref)
        _describe(p, description)
        if alias:
            _sub(_sub(p, "AliasSet"), "Alias", nameSpace=namespace, alias=alias)

    def typed(self, name: str, spec: Any, description: str = "", alias: str | None = None,
              namespace: str = ROOT) -> None:
        """A parameter with a type of its own, from its declaration."""
        _value_type(self.types, "Parameter", f"{name}_t", spec, ValueType(spec.type))
        self.parameter(name, f"{name}_t", description, alias, namespace)

    def sized(self, name: str, length_ref: str, bits_per_unit: int, max_bits: int,
              string: bool, description: str) -> None:
        """A string (or octets) whose length another parameter read before it gives."""
        t = _sub(self.types, "StringParameterType" if string else "BinaryParameterType",
                 name=f"{name}_t")
        if string:
            enc = _sub(t, "StringDataEncoding", encoding="UTF-8")
            size = _sub(enc, "Variable", maxSizeInBits=str(max_bits))
        else:
            size = _sub(_sub(t, "BinaryDataEncoding"), "SizeInBits")
        dynamic = _sub(size, "DynamicValue")
        _sub(dynamic, "ParameterInstanceRef", parameterRef=length_ref,
             useCalibratedValue="false")
        _sub(dynamic, "LinearAdjustment", slope=str(bits_per_unit))
        self.parameter(name, f"{name}_t", description)

    def container(self, name: str, entries: Sequence[str], base: str | None = None,
                  where: Sequence[tuple[str, str]] = (), abstract: bool = False,
                  description: str = "", raw: bool = False) -> None:
        """A SequenceContainer: its base container's restriction is evaluated on what
        that base has read, so each selector (type, APID, service, structure id, event
        id) is an entry of the container above the one it selects. `raw` compares the
        selectors' raw values (enumerated ids)."""
        c = _sub(self.containers, "SequenceContainer", name=name,
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
                    _sub(criteria, "Comparison", parameterRef=field, value=value,
                         **({"useCalibratedValue": "false"} if raw else {}))


def _service(service: int, subtype: int) -> tuple[tuple[str, str], ...]:
    return (("pus_service", str(service)), ("pus_subtype", str(subtype)))


def _telemetry(root: ET.Element, dictionary: Dictionary, layouts: Layouts) -> None:
    tm = _Telemetry(root)
    for field, bits in HEADER + TM_SECONDARY + (("hk_sid", 16),) + REQUEST:
        tm.parameter(field, f"uint{bits}")
    tm.container("ccsds_packet", [f for f, _ in HEADER], abstract=True,
                 description="CCSDS space packet primary header")
    tm.container("pus_tm", [f for f, _ in TM_SECONDARY], "ccsds_packet",
                 (("ccsds_type", "0"), ("ccsds_apid", str(APID))), abstract=True,
                 description="PUS-C TM secondary header; time is CUC 4+2 with an implicit "
                             "P-field: cuc_coarse seconds and cuc_fine 2^-16 s since the "
                             "satellite's time reference")

    # TM[3,25] housekeeping.
    for point in dictionary.telemetry:
        tm.typed(xtce_name(point.name), point, point.description, point.name)
    tm.container("hk", ["hk_sid"], "pus_tm", _service(3, 25), abstract=True,
                 description="TM[3,25] housekeeping: the structure id")
    for structure in layouts.structures.values():
        tm.container(f"hk_{structure.name}", [xtce_name(p.name) for p in structure.points],
                     "hk", (("hk_sid", str(structure.sid)),),
                     description=f"TM[3,25] housekeeping of {structure.name}, structure id "
                                 f"0x{structure.sid:04x}")

    # TM[5,x] events: [5,1] info, [5,2] warning, [5,3] error, [5,4] critical.
    _enumerated(tm.types, "Parameter", "event_id_t", 16,
                sorted((name_id(e.name), e.name) for e in dictionary.events),
                "An event's id (CRC-16 of its name)")
    tm.parameter("event_id", "event_id_t")
    tm.container("event", ["event_id"], "pus_tm", (("pus_service", "5"),), abstract=True,
                 description="TM[5,x] event report: the event id; the subtype is the "
                             "severity (1 info, 2 warning, 3 error, 4 critical)")
    for event in dictionary.events:
        local = f"event_{xtce_name(event.name)}"
        for arg in event.args:
            tm.parameter(f"{local}_{arg.name}", SHARED[ValueType(arg.type)],
                         f"{event.name}: {arg.name}", f"{event.name}.{arg.name}")
        tm.container(local, [f"{local}_{a.name}" for a in event.args], "event",
                     (("event_id", str(name_id(event.name))),), raw=True,
                     description=f"{event.name} ({event.severity.value}): "
                                 f"{event.description}")

    # TM[1,x] verification.
    _enumerated(tm.types, "Parameter", "failure_code_t", 16,
                sorted((code, name) for name, code in FAILURES.items()),
                "Why a TC failed verification (hal.pus)")
    tm.parameter("failure_code", "failure_code_t")
    tm.parameter("failure_reason_length", "uint16")
    tm.sized("failure_reason", "failure_reason_length", 8, MAX_REASON_BITS, True,
             "Why a TC failed, in words")
    tm.container("verification", [f for f, _ in REQUEST], "pus_tm", (("pus_service", "1"),),
                 abstract=True, description="TM[1,x] verification report: the request id "
                                            "(the TC's packet ID and sequence control)")
    for subtype, stage in VERIFICATION.items():
        tm.container(f"tm_1_{subtype}", ["failure_code", "failure_reason_length",
                                         "failure_reason"] if subtype in FAILED else [],
                     "verification", (("pus_subtype", str(subtype)),),
                     description=f"TM[1,{subtype}]: {stage}")

    # TM[11,13] schedule summary, TM[17,2] are-you-alive.
    tm.parameter("schedule_count", "uint16")
    tm.sized("schedule_items", "schedule_count", SCHEDULE_ITEM_BITS, 0, False,
             "Each scheduled TC: release time CUC 4+2, APID u16, sequence count u16, "
             "function id u16 (0 for other services)")
    tm.container("tm_11_13", ["schedule_count", "schedule_items"], "pus_tm",
                 _service(11, 13), description="TM[11,13] summary of the time-tagged TCs")
    tm.container("tm_17_2", [], "pus_tm", _service(17, 2),
                 description="TM[17,2] answer to an are-you-alive test")
    # TM[15,13] packet store summary (flight/pus/storage.py).
    summary = (("store_packets", "Packets waiting in the store"),
               ("store_octets", "Octets waiting in the store"),
               ("store_capacity", "The store's size in octets"),
               ("store_stored", "Packets kept out of contact since boot"),
               ("store_overwritten", "Oldest packets given up for newer ones since boot"),
               ("store_refused", "Packets not kept since boot"),
               ("store_played_back", "Stored packets sent down since boot"))
    for name, description in summary:
        tm.parameter(name, "uint32", description)
    tm.container("tm_15_13", [n for n, _ in summary], "pus_tm", _service(15, 13),
                 description="TM[15,13] summary of the packet store")

    # TM[20,2] parameter report: the first parameter's value (a report of one is what
    # a query of one returns; items after the first are not described).
    _enumerated(tm.types, "Parameter", "param_id_t", 16,
                sorted((name_id(p.name), p.name) for p in dictionary.parameters),
                "An on-board parameter's id (CRC-16 of its name)")
    tm.parameter("param_count", "uint16")
    tm.parameter("param_id", "param_id_t")
    tm.container("parameter_report", ["param_count", "param_id"], "pus_tm",
                 _service(20, 2), abstract=True,
                 description="TM[20,2] parameter report: the count and the first id")
    for spec in dictionary.parameters:
        local = f"param_{xtce_name(spec.name)}"
        tm.typed(local, spec, spec.description, spec.name, f"{ROOT}.parameters")
        tm.container(f"tm_20_2_{xtce_name(spec.name)}", [local], "parameter_report",
                     (("param_id", str(name_id(spec.name))),), raw=True,
                     description=f"TM[20,2] value of {spec.name}")


# Each verifier: the service 1 report on this TC (its APID and sequence count) of the
# stage's subtype passes it, of the next subtype fails it with the failure code and
# reason. The algorithm is YAMCS's PUS-1 verifier; its inputs are, in order, the TC's
# APID and sequence count (YAMCS's command argument and command history), and the
# report's APID, sequence count and subtype.
VERIFIER_INPUTS = (("/yamcs/cmd/arg/ccsds_apid", "sentApid"),
                   ("/yamcs/cmdHist/ccsds-seqcount", "sentSeq"),
                   ("req_apid", "rcvdApid"), ("req_seq_count", "rcvdSeq"),
                   ("pus_subtype", "subtype"), ("failure_code", "failure_code"),
                   ("failure_reason", "failure_reason"))


def _verifiers(mc: ET.Element) -> None:
    verifiers = _sub(mc, "VerifierSet")
    for tag, name, stage in (("AcceptedVerifier", "Accepted", 1),
                             ("ExecutionVerifier", "Started", 3),
                             ("CompleteVerifier", "Completed", 7)):
        v = _sub(verifiers, tag, name=name)
        algorithm = _sub(v, "CustomAlgorithm", name=f"pus1_{stage}")
        _describe(algorithm, f"TM[1,{stage}] on this TC passes, TM[1,{stage + 1}] fails")
        _sub(algorithm, "AlgorithmText", f"org.yamcs.pus.Pus1Verifier({{stage: {stage}, "
             'template: "{failure_code}: {failure_reason}"})', language="java")
        inputs = _sub(algorithm, "InputSet")
        for ref, input_name in VERIFIER_INPUTS:
            _sub(inputs, "InputParameterInstanceRef", parameterRef=ref, inputName=input_name)
        _sub(v, "CheckWindow", timeToStopChecking=VERIFY_WITHIN,
             timeWindowIsRelativeTo="commandRelease")


def _commands(root: ET.Element, dictionary: Dictionary) -> None:
    cmd = _sub(root, "CommandMetaData")
    types = _sub(cmd, "ArgumentTypeSet")
    _shared_types(types, "Argument")
    commands = _sub(cmd, "MetaCommandSet")
    tc = _sub(commands, "MetaCommand", name="pus_tc", abstract="true")
    _describe(tc, "A PUS-C TC[8,1], unsigned: the sequence count, the length and the CRC "
                  "are the ground system's to fill in (YAMCS: PusCommandPostprocessor), "
                  "the security header and MAC the security layer's (skyrack ground "
                  "gateway)")
    args = _sub(tc, "ArgumentList")
    for field, bits, initial in TC_ARGUMENTS:
        _sub(args, "Argument", name=field, argumentTypeRef=f"uint{bits}",
             **({"initialValue": initial} if initial else {}))
    container = _sub(tc, "CommandContainer", name="pus_tc")
    entries = _sub(container, "EntryList")
    for name, hex_value, bits in (("ccsds_version", "00", 3), ("ccsds_type", "01", 1),
                                  ("ccsds_sec_hdr", "01", 1)):
        _sub(entries, "FixedValueEntry", name=name, binaryValue=hex_value, sizeInBits=str(bits))
    _sub(entries, "ArgumentRefEntry", argumentRef="ccsds_apid")
    for name, hex_value, bits in (("ccsds_seq_flags", "03", 2), ("ccsds_seq_count", "0000", 14),
                                  ("ccsds_length", "0000", 16), ("pus_version", "02", 4)):
        _sub(entries, "FixedValueEntry", name=name, binaryValue=hex_value, sizeInBits=str(bits))
    for field, _, _ in TC_ARGUMENTS[1:]:
        _sub(entries, "ArgumentRefEntry", argumentRef=field)
    for spec in dictionary.commands:
        local = xtce_name(spec.name)
        mc = _sub(commands, "MetaCommand", name=local)
        _describe(mc, spec.description)
        base = _sub(mc, "BaseMetaCommand", metaCommandRef="pus_tc")
        assignments = _sub(base, "ArgumentAssignmentList")
        for field, value in (("ccsds_apid", str(APID)), ("pus_service", "8"),
                             ("pus_subtype", "1"), ("function_id", str(name_id(spec.name)))):
            _sub(assignments, "ArgumentAssignment", argumentName=field, argumentValue=value)
        if spec.args:  # (an empty ArgumentList is not XTCE)
            arglist = _sub(mc, "ArgumentList")
            for a in spec.args:
                type_ref = f"{local}_{a.name}_t"
                _value_type(types, "Argument", type_ref, a, ValueType(a.type))
                arg = _sub(arglist, "Argument", name=a.name, argumentTypeRef=type_ref,
                           **_initial(a))
                _describe(arg, a.description)
        body = _sub(mc, "CommandContainer", name=local)
        entries = _sub(body, "EntryList")
        for a in spec.args:
            _sub(entries, "ArgumentRefEntry", argumentRef=a.name)
        _sub(body, "BaseContainer", containerRef="pus_tc")
        if spec.hazardous:
            _sub(mc, "DefaultSignificance", consequenceLevel="critical",
                 reasonForWarning="hazardous command")
        _verifiers(mc)


def _initial(arg: ArgSpec) -> dict[str, str]:
    """An optional argument's default, as XTCE writes it."""
    if arg.required or arg.default is None:
        return {}
    value = arg.default
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return {"initialValue": text}


def event_templates(dictionary: Dictionary) -> list[dict[str, str]]:
    """The message of each event, as YAMCS's PusEventDecoder reads them (etc/events.json):
    the event id's label and a template naming its argument parameters."""
    out = []
    for event in dictionary.events:
        local = f"event_{xtce_name(event.name)}"
        words = " ".join(f"{a.name}={{{local}_{a.name}}}" for a in event.args)
        out.append({"eventId": event.name,
                    "template": f"{event.name}: {words}" if words else event.name})
    return out


def to_xtce(dictionary: Dictionary, name: str = ROOT) -> str:
    """The XTCE document, as text."""
    ET.register_namespace("xtce", NS)
    layouts = Layouts(dictionary)
    root = ET.Element(_q("SpaceSystem"), {"name": name})
    _describe(root, "skyrack flight software: CCSDS space packets, PUS-C services")
    _telemetry(root, dictionary, layouts)
    _commands(root, dictionary)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
