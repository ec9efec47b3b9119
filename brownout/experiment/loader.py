"""Load an experiment file: YAML with positions → overrides → validation, all errors at once.

Order: read (``${VAR}`` expanded, positions kept) → ``--set`` overrides → pydantic model
(durations scaled by ``--time-scale``, relative paths resolved against the file's folder)
→ checks the model cannot make alone (fault params against the catalogue, proxies named by
steps, load shape and edge cases by the load generator's parsers, data files' contents).
Any error anywhere raises one ``InvalidInputs`` sorted by position; nothing has run.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from brownout.experiment.faultcheck import check_fault_step
from brownout.experiment.model import Experiment, FaultStep
from brownout.experiment.steady import ROUTE_BOUNDS
from brownout.experiment.schema import experiment_json_schema
from brownout.fleet.targets import check_step
from brownout.library import resolve_reference
from brownout.load.payloads import load_corpus
from brownout.load.replay import load_recorded
from brownout.load.shapes import parse_load_shape
from brownout.load.stress import stress_sla
from brownout.steady.golden import load_golden
from faults.errors import InvalidInput, InvalidInputs
from faults.validation import UNKNOWN_KEY
from proxy.yamlsource import YamlDocument, errors_from_validation, format_path, load_yaml_with_positions, parse_path


def load_experiment(
    path: Path | str,
    *,
    env: Mapping[str, str] = os.environ,
    overrides: Sequence[str] = (),
    time_scale: float = 1.0,
) -> Experiment:
    """The validated experiment, or InvalidInputs naming every problem (file:line:col: path: message).

    ``library:NAME`` names an experiment of the library shipped with Brownout.
    """
    path = resolve_reference(path)
    doc = load_yaml_with_positions(path, env)
    errors: list[InvalidInput] = list(doc.errors)
    data = copy.deepcopy(doc.data)
    for text in overrides:
        try:
            data = apply_override(data, text)
        except InvalidInput as exc:
            errors.append(InvalidInput(exc.message, exc.field, source="--set"))
    if not isinstance(time_scale, (int, float)) or not time_scale > 0:
        errors.append(InvalidInput(f"must be > 0, got {time_scale!r}", "--time-scale"))
        time_scale = 1.0
    if not isinstance(data, dict):
        errors.append(doc.error("an experiment file is a mapping (version, title, target, load, ...)", ""))
        raise InvalidInputs(errors)

    env_fields = {e.field for e in doc.errors}
    experiment: Experiment | None = None
    context = {"time_scale": float(time_scale), "base_dir": path.resolve().parent}
    try:
        experiment = Experiment.model_validate(data, context=context)
    except ValidationError as exc:
        # An unset ${VAR} is already reported; its empty stand-in need not be reported again.
        shape_messages = _shape_messages(data.get("load"))
        for e in errors_from_validation(exc, doc, data, known=_known_keys()):
            if e.field in env_fields:
                continue
            if e.message.startswith(UNKNOWN_KEY) and e.field in shape_messages:
                e.message = shape_messages[e.field]  # the load generator says which shape takes it
                e.args = (e.message,)
            errors.append(e)
    errors += _step_errors(doc, data)
    if experiment is not None:
        errors += [doc.locate(e) for e in _semantic_errors(experiment)]
    if errors:
        raise InvalidInputs(sorted(errors, key=_order))
    experiment._source = path.resolve()
    return experiment


@cache
def _known_keys() -> tuple[str, ...]:
    schema = experiment_json_schema()
    objects = [schema, *schema.get("$defs", {}).values()]
    return tuple(sorted({key for obj in objects for key in obj.get("properties", {})}))


def _shape_messages(load: Any) -> dict[str, str]:
    if not isinstance(load, dict):
        return {}
    return {e.field or "": e.message for e in _catch(lambda: parse_load_shape(load, "load"))}


def _order(err: InvalidInput) -> tuple[int, int, int, str]:
    # Errors of the file first by position; those of other files (data, --set) after.
    other = 0 if err.line is not None else 1
    return other, err.line or 0, err.column or 0, err.field or ""


def apply_override(data: Any, text: str) -> Any:
    """Apply ``dotted.path=value`` (value parsed as YAML, so ``5``, ``true``, ``30s`` work)."""
    dotted, sep, raw = text.partition("=")
    if not sep or not dotted.strip():
        raise InvalidInput(f"expected dotted.path=value, got {text!r}", None)
    try:
        parts = parse_path(dotted)
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(f"bad override {text!r}: {exc}", dotted.strip()) from None
    if data is None:
        data = {}
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = format_path(parts[: i + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part <= len(node):
                raise InvalidInput(f"no list item {part} to set", where)
            if part == len(node):
                node.append(value if last else {})
            elif last:
                node[part] = value
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise InvalidInput("cannot set a key inside a value that is not a mapping", where)
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return data


def _step_errors(doc: YamlDocument, data: dict[str, Any]) -> list[InvalidInput]:
    """Fault params and match checked against the catalogues, on the raw steps."""
    out: list[InvalidInput] = []
    steps = data.get("method")
    if not isinstance(steps, list):
        return out
    for i, step in enumerate(steps):
        if isinstance(step, dict) and "fault" in step:
            for err in check_fault_step(step):
                field = f"method[{i}].{err.field}" if err.field else f"method[{i}]"
                out.append(doc.error(err.message, field))
    return out


def _semantic_errors(exp: Experiment) -> list[InvalidInput]:
    out: list[InvalidInput] = []
    out += _catch(exp.load.to_shape)
    if exp.load.shape == "stress":
        out += [InvalidInput(e.message, "steady_state.sla") for e in _catch(lambda: stress_sla(exp.steady_state.sla))]
    out += _catch(exp.load.edge_case_mix)
    if exp.load.payloads is not None:
        out += _catch(lambda: load_corpus(exp.load.payloads), "load.payloads")
    out += _name_errors(exp)
    if exp.steady_state.sidecars is not None and not any(p.admins or p.discover for p in exp.proxies):
        out.append(InvalidInput("judges the sidecars' own counts: 'proxies' needs a Brownout sidecar "
                                "(admin or discover)", "steady_state.sidecars"))
    for i, step in exp.fault_steps:
        out += _proxy_errors(exp, i, step)
    sla = exp.steady_state.sla
    for key in (k for k in ROUTE_BOUNDS if getattr(sla, k)):
        if exp.load.shape == "stress":
            out.append(InvalidInput("a stress search judges its steps by the load alone", f"steady_state.sla.{key}"))
        elif not any(p.admin is not None for p in exp.proxies):
            out.append(InvalidInput("needs a Brownout proxy in 'proxies': its own counters are what is judged",
                                    f"steady_state.sla.{key}"))
    predictions = exp.steady_state.predictions
    if predictions is not None and predictions.replay is not None:
        out += _replay_errors(exp)
    if predictions is not None and predictions.golden is not None:
        golden_errors = _catch(lambda: load_golden(predictions.golden), "steady_state.predictions.golden")
        out += golden_errors
        if not golden_errors:
            labelled = load_golden(predictions.golden).has_labels
            for name in ("min_precision", "min_recall", "max_brier"):
                if getattr(predictions, name) is not None and not labelled:
                    out.append(InvalidInput("needs labels in the golden set ('label': 0 or 1)",
                                            f"steady_state.predictions.{name}"))
    return out


def _replay_errors(exp: Experiment) -> list[InvalidInput]:
    where = "steady_state.predictions.replay"
    if exp.load.payloads is None:
        return [InvalidInput("needs load.payloads: a recording, whose answers the replayed ones are compared with", where)]
    errors = _catch(lambda: load_recorded(exp.load.payloads), "load.payloads")  # type: ignore[arg-type]
    if errors:
        return errors
    answered = sum(r is not None for r in load_recorded(exp.load.payloads).responses)  # type: ignore[arg-type]
    if not answered:
        return [InvalidInput(f"load.payloads ({exp.load.payloads.name}) holds no recorded answer (response) to compare "
                             "with: record it through the proxy, or import it with its responses", where)]
    return []


def _proxy_errors(exp: Experiment, i: int, step: FaultStep) -> list[InvalidInput]:
    where = f"method[{i}].proxy"
    if not exp.proxies:
        return [InvalidInput("a fault step needs a proxy, and 'proxies' is empty", where)]
    index = exp.proxy_index(step)
    if index is None:
        if isinstance(step.proxy, int):
            return [InvalidInput(f"no proxy {step.proxy}: 'proxies' has {len(exp.proxies)}", where)]
        known = [u for p in exp.proxies for u in (p.name, *p.urls) if u]
        return [InvalidInput(f"{step.proxy!r} is not the name or a URL of any of the proxies: {', '.join(known)}",
                             where)]
    size = exp.proxies[index].fixed_size
    if size is not None:  # a discovered group is checked at preflight, once resolved
        try:
            check_step(size, step.targets, exp.safety, f"method[{i}]")
        except InvalidInput as exc:
            return [exc]
    return _toxiproxy_errors(exp, i, step)


def _name_errors(exp: Experiment) -> list[InvalidInput]:
    seen: set[str] = set()
    out = []
    for index, ref in enumerate(exp.proxies):
        if ref.name is not None:
            if ref.name in seen:
                out.append(InvalidInput(f"another proxies entry is named {ref.name!r}", f"proxies[{index}].name"))
            seen.add(ref.name)
    return out


def _toxiproxy_errors(exp: Experiment, i: int, step: FaultStep) -> list[InvalidInput]:
    """An external Toxiproxy server takes toxics only, and has no request to match."""
    if exp.proxy_for(step).toxiproxy is None:
        return []
    if not step.is_toxic:
        return [InvalidInput(f"{step.fault!r} is not a toxic: a Toxiproxy server takes latency, bandwidth, "
                             "slow_close, timeout, reset_peer, slicer or limit_data", f"method[{i}].fault")]
    if step.match:
        return [InvalidInput("a Toxiproxy server has no requests to match; use params.toxicity", f"method[{i}].match")]
    return []


def _catch(call: Callable[[], Any], data_field: str | None = None) -> list[InvalidInput]:
    """Run a parser; return its errors. Errors located in a data file keep that file's
    position and get ``data_field`` (the key that named the file) as their field."""
    try:
        call()
    except InvalidInputs as exc:
        return [_named(e, data_field) for e in exc.errors]
    except InvalidInput as exc:
        return [_named(exc, data_field)]
    return []


def _named(err: InvalidInput, data_field: str | None) -> InvalidInput:
    if data_field is None or err.source is None:
        return err
    return InvalidInput(err.message, data_field, source=err.source, line=err.line, column=err.column)

