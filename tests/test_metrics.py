
from nndl.metrics import confusion_matrix, format_confusion

NAMES = ("airplane", "automobile", "bird")


def test_confusion_table_keeps_whole_class_names_and_aligns():
    matrix = confusion_matrix([0, 1, 1, 2, 2, 2], [0, 1, 0, 2, 2, 1], 3)
    lines = format_confusion(matrix * 1000, NAMES).splitlines()
    assert lines[0].split()[:3] == list(NAMES)
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    assert lines[2].split()[:3] == ["automobile", "1000", "1000"]
    assert lines[2].split()[-1] == "0.500"
