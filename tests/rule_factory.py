"""Hand-made rubrics and items for the scorer's unit tests (the benchmark builder's output is used where it exists)."""
from __future__ import annotations

from wafersage.tasks.bench.schema import MorphologyRubric, RootCauseRubric, Rubric, SpatialRubric, Term, VQAItem


def edge_loc_rubric(wafer_id: str = "w1") -> Rubric:
    """An Edge-Loc wafer: a failing arc at the edge around 3 o'clock."""
    return Rubric(
        wafer_id=wafer_id, defect_types=["Edge-Loc"],
        spatial=SpatialRubric(
            zone="edge", distribution="clustered", clock_positions=[3],
            must_hit=[Term(term="edge", synonyms=["periphery", "rim"]),
                      Term(term="3 o'clock", synonyms=["three o'clock", "right side"])],
            must_avoid=["center", "9 o'clock", "middle"],
        ),
        morphology=MorphologyRubric(
            pattern_type="arc", density="dense", geometric_structure="arc", texture_description="clustered",
            must_hit=[Term(term="arc", synonyms=["crescent"]), Term(term="dense", synonyms=["densely packed"]),
                      Term(term="clustered", synonyms=["cluster"])],
            must_avoid=["ring", "scratch", "scattered"],
        ),
        root_cause=RootCauseRubric(
            equipment_category=["Handling", "Etching"], process_step="wafer handling",
            potential_causes=["clamp damage"],
            must_hit=[Term(term="handling", synonyms=["wafer handling"]), Term(term="etching", synonyms=["etch"]),
                      Term(term="clamp damage", synonyms=["clamp"])],
            must_avoid=["lithography", "cmp"],
        ),
        summary="An edge arc at 3 o'clock.",
    )


def center_rubric(wafer_id: str = "w2") -> Rubric:
    return Rubric(
        wafer_id=wafer_id, defect_types=["Center"],
        spatial=SpatialRubric(
            zone="center", distribution="clustered",
            must_hit=[Term(term="center", synonyms=["centre", "middle of the wafer"])],
            must_avoid=["edge", "3 o'clock"],
        ),
        morphology=MorphologyRubric(
            pattern_type="blob", density="dense", geometric_structure="round", texture_description="solid",
            must_hit=[Term(term="blob", synonyms=["round cluster"]), Term(term="dense")],
            must_avoid=["ring", "line"],
        ),
        root_cause=RootCauseRubric(
            equipment_category=["Deposition", "CMP"], process_step="deposition",
            potential_causes=["showerhead non-uniformity"],
            must_hit=[Term(term="deposition", synonyms=["cvd"]), Term(term="cmp", synonyms=["polishing"])],
            must_avoid=["handling", "probe card"],
        ),
        summary="A dense centre blob.",
    )


def item(category: str, question: str, answer: str = "", *, wafer_id: str = "w1", dimension: str | None = None,
         labels=("Edge-Loc",), expected_yes: bool | None = None, qa: int = 0) -> VQAItem:
    return VQAItem(
        id=f"{wafer_id}-q{qa}", wafer_id=wafer_id, image=f"images/{wafer_id}.png", question=question,
        answer=answer, category=category, dimension=dimension or (category if category != "consistency" else "spatial"),
        difficulty="easy", labels=list(labels), qa_index=qa, split="test", expected_yes=expected_yes,
    )
