"""Open a site folder: manifest plus model, checked against each other."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError, Problem, SiteError
from .manifest import Site, load_manifest
from .model import Progress, SiteModel, load_model


@dataclass
class LoadedSite:
    site: Site
    model: SiteModel
    warnings: list[Problem]


def find_part(model: SiteModel, device_node: str, part: str) -> str | None:
    """The node below device_node named `part`, or ending in '.part' or '/part'."""
    for name in model.descendants(device_node)[1:]:
        if name == part or name.endswith("." + part) or name.endswith("/" + part):
            return name
    return None


def node_owners(site: Site, model: SiteModel) -> dict[str, int]:
    """Model node -> index of the device that owns it.

    Devices may nest (a motor inside its pump, pumps inside their line): the innermost
    device owns its node's subtree, the outer one the rest of its own subtree.
    """
    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:
        chain, at = [], name
        while at is not None and at not in depth:
            chain.append(at)
            node = model.nodes.get(at)
            at = node.parent if node is not None else None
        d = depth[at] if at is not None else -1
        for n in reversed(chain):
            d += 1
            depth[n] = d
        return depth[name]

    bound = [(depth_of(d.node), i) for i, d in enumerate(site.devices) if d.node in model.nodes]
    owners: dict[str, int] = {}
    for _, i in sorted(bound):  # outermost first, so inner devices take their subtrees over
        for name in model.descendants(site.devices[i].node):
            owners[name] = i
    return owners


def check_binding(site: Site, model: SiteModel) -> list[Problem]:
    """Problems in how the manifest's devices bind to the model's nodes."""
    file = str(site.manifest_path)
    problems: list[Problem] = []
    bound: set[str] = set()
    owners = node_owners(site, model)
    for i, device in enumerate(site.devices):
        where = f"devices[{i}] ({device.id}).node"
        if device.node not in model.nodes:
            problems.append(Problem(file, where, f"node {device.node!r} is not in the model {model.path.name}"))
            continue
        nodes = model.descendants(device.node)
        bound.update(nodes)
        if not any(model.nodes[n].geometry for n in nodes):
            problems.append(Problem(file, where, f"node {device.node!r} has no geometry to show", "warning"))
        elif not any(model.nodes[n].geometry for n in nodes if owners.get(n) == i):
            inner = sorted({site.devices[owners[n]].id for n in nodes if owners.get(n, i) != i})
            problems.append(Problem(
                file, where,
                f"everything with geometry below node {device.node!r} belongs to the devices nested in it "
                f"({', '.join(inner)}): this device has nothing of its own to colour, label or pick",
                "warning",
            ))  # fmt: skip
        for spec in device.commands:
            for error in _command_problems(device, spec):
                problems.append(Problem(file, f"devices[{i}] ({device.id}).commands.{spec.name}", error))
        for motion in device.motions:
            if find_part(model, device.node, motion.node) is None:
                problems.append(
                    Problem(file, f"devices[{i}] ({device.id}).overlays", f"{motion.kind} overlay: no node {motion.node!r} below {device.node!r}")
                )
    scenery = _scenery_nodes(site, model, file, problems)
    unbound = [
        n.name for n in model.nodes.values()
        if n.geometry and n.name not in bound and n.name not in scenery and not _is_structure(n.name)
    ]  # fmt: skip
    if unbound:
        shown = ", ".join(sorted(unbound)[:10]) + (" ..." if len(unbound) > 10 else "")
        problems.append(Problem(
            str(model.path), "",
            f"{len(unbound)} model node(s) with geometry are bound to no device: {shown} "
            "(bind them to devices, or list them in scenery = [...] in site.toml)",
            "warning",
        ))  # fmt: skip
    return problems


def _scenery_nodes(site: Site, model: SiteModel, file: str, problems: list[Problem]) -> set[str]:
    """Nodes the manifest declares scenery (glob patterns on node names), with everything below them."""
    nodes: set[str] = set()
    for k, pattern in enumerate(site.scenery):
        matched = [name for name in model.nodes if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            problems.append(Problem(file, f"scenery[{k}]", f"pattern {pattern!r} matches no node in the model {model.path.name}", "warning"))
        for name in matched:
            nodes.update(model.descendants(name))
    return nodes


def _command_problems(device, spec) -> list[str]:
    # Commands are checked by the twin's own rules (interlock grammar, roles, success values),
    # so the checker and the service can never disagree.
    from twinview.twin.commands import check_command

    return check_command(device, spec)


def _is_structure(name: str) -> bool:
    """Nodes under a 'structure' prefix are scenery (walls, floors) and need no binding."""
    return name.split("/")[0].split(".")[0].lower() in ("structure", "building", "scenery")


def open_site(site_dir: str | Path, progress: Progress | None = None) -> LoadedSite:
    """Load manifest and model; raises SiteError with every error found."""
    site, warnings = load_manifest(site_dir)
    try:
        model = load_model(site.model, site.root, progress)
    except SiteError:
        raise
    except Exception as exc:  # whatever slipped past the model checks is still one line, never a traceback
        raise ModelError(f"cannot read model ({type(exc).__name__}): {str(exc)[:300]}", str(site.model)) from None
    problems = check_binding(site, model)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SiteError(errors)
    return LoadedSite(site, model, warnings + [p for p in problems if p.severity == "warning"])


def check_site(site_dir: str | Path) -> list[Problem]:
    """Every problem with a site, errors and warnings, without raising."""
    try:
        site, warnings = load_manifest(site_dir)
    except SiteError as exc:
        return exc.problems
    except Exception as exc:  # documented never to raise
        return [Problem(str(site_dir), "", f"cannot read the manifest ({type(exc).__name__}): {str(exc)[:300]}")]
    try:
        model = load_model(site.model, site.root)
    except SiteError as exc:
        return warnings + exc.problems
    except Exception as exc:  # documented never to raise: whatever slipped past the model checks is one problem
        return warnings + [Problem(str(site.model), "", f"cannot read model ({type(exc).__name__}): {str(exc)[:300]}")]
    return warnings + check_binding(site, model)
