"""A small handwritten benchmark folder for runner tests (real files: map store, PNGs, items, rubrics, manifest)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wafersage.tasks.bench.folder import write_manifest
from wafersage.tasks.maps.palette import COLOUR
from wafersage.tasks.bench.schema import MorphologyRubric, RootCauseRubric, Rubric, SpatialRubric, Term, VQAItem
from wafersage.tasks.maps.store import write_store
from wafersage.tasks.maps.wafer import WaferMap

QUESTIONS = [
    ("defect_type", "defect_type", "What kind of defect pattern does this wafer show?",
     "The wafer shows a Center pattern: failing dies cluster in the middle.", None),
    ("spatial", "spatial", "Where on the wafer are the failing dies concentrated?",
     "They are concentrated in the center zone of the wafer.", None),
    ("consistency", "spatial", "Are the failing dies mostly near the edge?",
     "No, the failing dies sit in the center, not near the edge.", False),
]


def _grid(size: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(xx, yy) / (size / 2)
    grid = np.where(r <= 1.0, 1, 0).astype(np.uint8)
    grid[(r <= radius)] = 2
    return grid


def _rubric(wafer_id: str) -> Rubric:
    return Rubric(
        wafer_id=wafer_id, defect_types=["Center"],
        spatial=SpatialRubric(zone="center", distribution="clustered", must_hit=[Term(term="center")],
                              must_avoid=["edge"]),
        morphology=MorphologyRubric(pattern_type="blob", density="dense", geometric_structure="round",
                                    texture_description="solid", must_hit=[Term(term="cluster")]),
        root_cause=RootCauseRubric(equipment_category=["Deposition"], process_step="CVD",
                                   potential_causes=["showerhead"], must_hit=[Term(term="deposition")]),
        summary="A Center pattern.",
    )


def make_bench(root: str | Path, n_wafers: int = 4, name: str = "tiny-bench", image_scale: int = 8,
               train_wafers: int = 1) -> Path:
    """Write a benchmark folder with ``n_wafers`` wafers x 3 questions; the first ``train_wafers`` are train."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    maps, items, rubrics = [], [], []
    for w in range(n_wafers):
        wafer_id = f"w{w:03d}"
        split = "train" if w < train_wafers else "test"
        grid = _grid(20 + w, 0.2 + 0.01 * w)  # the blob stays in the center zone, as the answers say
        maps.append(WaferMap(grid=grid, id=wafer_id, labels=("Center",), split=split))
        pixels = np.kron(COLOUR[grid], np.ones((image_scale, image_scale, 1), dtype=np.uint8))
        Image.fromarray(pixels).save(root / "images" / f"{wafer_id}.png")
        rubrics.append(_rubric(wafer_id))
        for q, (category, dimension, question, answer, expected) in enumerate(QUESTIONS):
            items.append(VQAItem(
                id=f"{wafer_id}-q{q}", wafer_id=wafer_id, image=f"images/{wafer_id}.png", question=question,
                answer=answer, category=category, dimension=dimension, difficulty="easy", labels=["Center"],
                qa_index=q, split=split, expected_yes=expected,
            ))
    write_store(maps, root / "maps")
    (root / "items.jsonl").write_text("".join(i.model_dump_json() + "\n" for i in items), encoding="utf-8")
    (root / "rubrics.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rubrics), encoding="utf-8")
    write_manifest(root, name=name, version="1", seed=0)
    return root
