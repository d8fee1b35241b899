"""The second assignment: a course-style solution passes every part, the answers are nndl's
reference (the mistakes' arithmetic without a mistake is the reference's), the inputs are
drawn from the seed, and the parts find their files (and say which are missing)."""

import shutil
import time

import numpy as np
import pytest

from nndl import layers, optim
from nndl.fc_net import FullyConnectedNet
from nndl.grading import Session, Settings
from nndl.grading import layer_mistakes as model
from nndl.grading.compare import matches
from nndl.grading.fcnet_mistakes import network
from nndl.grading.fcnet_parts import FAMILIES, HIDDEN, C, D, draw_net_case, reference_masks
from nndl.grading.layer_cases import EPS, draw_layer_case, layer_answers
from nndl.grading.optim_mistakes import step
from nndl.grading.optim_parts import RULES, course_inputs, draw_optim_case, optim_answer

from .conftest import C147, C147_FC, verdict

PARTS = ["affine_forward", "affine_backward", "relu_forward", "relu_backward",
         "batchnorm_forward_train", "batchnorm_forward_test", "batchnorm_backward",
         "batchnorm_backward_alt", "dropout_forward_train", "dropout_forward_test",
         "dropout_backward", "svm_loss", "softmax_loss", "affine_relu_forward",
         "affine_relu_backward", "affine_batchnorm_relu_forward",
         "affine_batchnorm_relu_backward", "sgd", "sgd_momentum", "sgd_nesterov_momentum",
         "rmsprop", "adam", "fc_loss", "fc_grads_numeric", "fc_grads_reference",
         "fc_batchnorm_loss", "fc_batchnorm_grads_numeric", "fc_batchnorm_grads_reference",
         "fc_dropout_loss", "fc_dropout_grads_numeric", "fc_dropout_grads_reference",
         "solver"]


def test_a_course_style_solution_passes_every_part(session):
    result = session.grade(C147_FC)
    assert [v.part for v in result.verdicts] == PARTS
    assert result.passed, [(v.part, v.message) for v in result.verdicts if not v.passed]
    assert verdict(result, "solver").message.endswith("(your utils/solver.py)")
    train = verdict(result, "dropout_forward_train").message
    assert train.startswith("kept ") and train.endswith("the same mask for the same seed")


def test_without_a_solver_the_checkers_own_loop_trains_the_network(session, tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    shutil.rmtree(sub / "utils")
    (v,) = session.grade(sub, only={"solver"}).verdicts
    assert v.passed and v.value == 1.0, v.message
    assert v.message.endswith("(nndl check's minimal Solver loop: the submission has no "
                              "utils/solver.py)")


def test_a_folder_with_both_assignments_checks_both(session, tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    shutil.copy(C147 / "nndl" / "neural_net.py", sub / "nndl")
    result = session.grade(sub, only={"loss", "softmax_loss"})
    assert [v.part for v in result.verdicts] == ["loss", "softmax_loss"] and result.passed


def test_the_package_folder_or_one_of_its_files_is_the_submission(session):
    for path in (C147_FC / "nndl", C147_FC / "nndl" / "optim.py"):
        result = session.grade(path, only={"adam", "softmax_loss"})
        assert result.passed and len(result.verdicts) == 2


def test_nesterov_in_the_cs231n_notes_form_is_the_courses_update(session, tmp_path):
    """``x += -mu * v_prev + (1 + mu) * v`` (CS231n's notes) and C147's ``w + v + mu * (v -
    v_prev)`` are one update, rearranged: both pass."""
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "optim.py"
    c147 = "next_w = w + v + config['momentum'] * (v - v_prev)"
    notes = "next_w = w - config['momentum'] * v_prev + (1 + config['momentum']) * v"
    path.write_text(path.read_text().replace(c147, notes))
    assert notes in path.read_text()
    (v,) = session.grade(sub, only={"sgd_nesterov_momentum"}).verdicts
    assert v.passed, v.message


def test_a_dropout_mask_drawn_otherwise_passes_and_is_the_networks_reference(session,
                                                                             tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "layers.py"
    course = "mask = (np.random.rand(*x.shape) < p) / p"
    path.write_text(path.read_text().replace(course, "mask = (np.random.rand(*x.shape) > "
                                             "1 - p) / p"))
    result = session.grade(sub, only={"dropout_forward_train", "fc_dropout_loss",
                                      "fc_dropout_grads_reference"})
    assert result.passed, [v.message for v in result.verdicts]
    case = draw_net_case(0)  # other masks indeed than the course's draw
    np.random.seed(case.dropout_seed)
    theirs = (np.random.rand(6, HIDDEN[3][0]) > 1 - case.dropout) / case.dropout
    assert not np.array_equal(theirs, reference_masks(case)[0])
    # a network whose dropout layers draw other masks than its dropout_forward does fails
    broken = tmp_path / "broken"
    shutil.copytree(C147_FC, broken)
    path = broken / "nndl" / "fc_net.py"
    path.write_text(path.read_text().replace("h, dropout_cache = dropout_forward(h, "
                                             "self.dropout_param)", "h, dropout_cache = "
                                             "dropout_forward(h, dict(self.dropout_param, "
                                             "seed=self.dropout_param['seed'] + 1))"))
    (v,) = session.grade(broken, only={"fc_dropout_loss"}).verdicts
    assert not v.passed


def test_a_file_not_submitted_fails_its_parts_by_name(session, tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    (sub / "nndl" / "optim.py").unlink()
    result = session.grade(sub, only={"adam", "solver", "relu_forward"})
    assert verdict(result, "relu_forward").passed
    for part in ("adam", "solver"):
        v = verdict(result, part)
        assert v.kind == "missing" and v.message == "not submitted: nndl/optim.py not found"


def test_a_part_not_submitted_names_no_failed_parts_it_builds_on(session, tmp_path):
    """Its reason is its missing file, not the (also missing) parts before it."""
    sub = tmp_path / "sub"
    (sub / "nndl").mkdir(parents=True)
    shutil.copy(C147_FC / "nndl" / "optim.py", sub / "nndl")
    result = session.grade(sub, only={"relu_forward", "affine_relu_forward", "sgd"})
    sandwich = verdict(result, "affine_relu_forward")
    assert sandwich.kind == "missing" and sandwich.because == []
    assert verdict(result, "sgd").passed


def test_an_import_failing_layers_py_fails_only_the_parts_that_need_it(session, tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "layers.py"
    path.write_text(path.read_text().replace("import pdb\n", "import pdb\nimport numpyy\n"))
    result = session.grade(sub)
    rules = {"sgd", "sgd_momentum", "sgd_nesterov_momentum", "rmsprop", "adam"}
    assert {v.part for v in result.verdicts if v.passed} == rules  # optim.py needs no layers
    failed = [v for v in result.verdicts if not v.passed]
    assert {v.kind for v in failed} == {"import"}
    assert {v.message for v in failed} == {"ModuleNotFoundError: No module named 'numpyy'"}
    assert all(v.traceback[-1].strip() == "import numpyy" for v in failed)
    assert verdict(result, "affine_forward").because == []
    assert verdict(result, "solver").because == ["fc_grads_reference"]  # sgd passes


def test_same_seed_same_verdicts(tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "layers.py"
    path.write_text(path.read_text().replace("dx = dout * (x > 0)", "dx = dout"))
    only = {"relu_backward", "dropout_forward_train", "batchnorm_forward_train", "adam"}

    def verdicts(seed):
        with Session(Settings(seed=seed, timeout=30)) as s:
            result = s.grade(sub, only=only)
        return [{k: v for k, v in d.items() if k != "seconds"}
                for d in (v.to_dict() for v in result.verdicts)]

    first = verdicts(11)
    assert first == verdicts(11)
    assert first != verdicts(12)  # other inputs: other values in the messages
    assert [v["part"] for v in first if v["status"] == "fail"] == ["relu_backward"]


# -- the answers are the reference's ---------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_layers_mistakes_without_a_mistake_are_the_reference(seed):
    c = draw_layer_case(seed)
    answers = layer_answers(c)
    models = {
        "affine_forward": model.affine(c.x, c.w, c.b, c.dout),
        "affine_backward": model.affine(c.x, c.w, c.b, c.dout),
        "relu_forward": model.relu(c.relu_x, c.relu_dout),
        "relu_backward": model.relu(c.relu_x, c.relu_dout),
        "batchnorm_forward_train": model.batchnorm_train(list(c.bn_batches), c.gamma, c.beta,
                                                         c.bn_param()),
        "batchnorm_forward_test": model.batchnorm_test(
            c.bn_test_x, c.gamma, c.beta, {"eps": EPS, "running_mean": c.running_mean,
                                           "running_var": c.running_var}),
        "batchnorm_backward": model.batchnorm_backward(c.bn_batches[0], c.gamma, c.bn_dout,
                                                       EPS),
        "batchnorm_backward_alt": model.batchnorm_backward(c.bn_batches[0], c.gamma,
                                                           c.bn_dout, EPS),
        "svm_loss": model.svm(c.scores, c.labels),
        "softmax_loss": model.softmax(c.scores, c.labels),
        "affine_relu_forward": model.affine_relu(c.x, c.w, c.b, c.dout),
        "affine_relu_backward": model.affine_relu(c.x, c.w, c.b, c.dout),
        "affine_batchnorm_relu_forward": model.affine_batchnorm_relu(
            c.abr_x, c.abr_w, c.b, c.gamma, c.beta, c.abr_dout, EPS),
        "affine_batchnorm_relu_backward": model.affine_batchnorm_relu(
            c.abr_x, c.abr_w, c.b, c.gamma, c.beta, c.abr_dout, EPS)}
    assert set(models) == set(answers)
    for part, values in models.items():
        for key, q in answers[part].quantities.items():
            assert matches(values[key], q.value), (part, key)
        assert answers[part].clear(), part  # every hint of the draw is certain


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("rule", RULES)
def test_the_update_rules_mistakes_without_a_mistake_are_the_reference(seed, rule):
    case = draw_optim_case(seed)
    answer = optim_answer(rule, case)
    w, dw, config = course_inputs(rule)
    ours, state = step(rule, w, dw, config)
    theirs, reference_state = getattr(optim, rule)(w.copy(), dw, dict(config))
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    for key in reference_state:
        np.testing.assert_allclose(state[key], reference_state[key], rtol=1e-14)
    assert answer.mistakes and answer.clear()


def test_the_notebooks_check_values_are_the_reference_s():
    """Two of the notebook's printed arrays (tests/test_course_optim.py checks them all)."""
    next_w = optim_answer("sgd_nesterov_momentum", draw_optim_case(0)).quantities[
        "course.next_w"].value
    assert next_w[0, 0] == pytest.approx(0.08714) and next_w[3, 4] == pytest.approx(1.32824)
    adam = optim_answer("adam", draw_optim_case(0)).quantities
    assert adam["course.t"].value == 6
    assert adam["course.next_w"].value[0, 0] == pytest.approx(-0.40094747, abs=1e-8)


@pytest.mark.parametrize("seed", [0, 5])
def test_the_networks_without_a_mistake_are_the_reference_fully_connected_net(seed):
    case = draw_net_case(seed)
    for family in FAMILIES:
        for c in case.configs[family]:
            dims = HIDDEN[c.depth]
            net = FullyConnectedNet(dims, input_dim=D, num_classes=C, reg=c.reg,
                                    dtype=np.float64, use_batchnorm=family == "batchnorm",
                                    dropout=case.dropout if family == "dropout" else 0,
                                    seed=case.dropout_seed)
            net.params = {k: v.copy() for k, v in c.params.items()}
            loss, grads = net.loss(case.X, case.y)
            scores = net.loss(case.X)
            masks = reference_masks(case)[:c.depth - 1] if family == "dropout" else None
            ours = network(c.params, case.X, case.y, c.reg, family == "batchnorm", masks)
            assert ours["loss"] == pytest.approx(loss, rel=1e-13)
            np.testing.assert_allclose(ours["scores"], scores, rtol=1e-12, atol=1e-14)
            for name in grads:
                np.testing.assert_allclose(ours[name], grads[name], rtol=1e-11, atol=1e-14)


def test_the_inputs_are_drawn_from_the_seed():
    first, again, other = draw_layer_case(3), draw_layer_case(3), draw_layer_case(4)
    np.testing.assert_array_equal(first.x, again.x)
    assert first.drop_seed == again.drop_seed and first.momentum == again.momentum
    assert not np.allclose(first.x, other.x)
    assert 0.6 <= first.drop_p <= 0.85  # keep and drop probabilities are told apart
    nets = draw_net_case(3), draw_net_case(4)
    assert nets[0].configs["plain"][1].reg != nets[1].configs["plain"][1].reg
    assert [c.reg == 0 for c in nets[0].configs["plain"]] == [True, False, True, False]


def test_the_reference_dropout_mask_is_the_courses_seeded_draw():
    case = draw_net_case(0)
    np.random.seed(case.dropout_seed)
    course = (np.random.rand(6, HIDDEN[3][0]) < case.dropout) / case.dropout
    np.testing.assert_array_equal(reference_masks(case)[0], course)
    out, (_, mask) = layers.dropout_forward(np.ones((6, 5)), {
        "mode": "train", "p": case.dropout, "seed": case.dropout_seed})
    np.testing.assert_array_equal(mask, course)


@pytest.mark.slow
def test_a_hanging_layer_times_out_alone_and_the_others_still_run(quick_session, tmp_path):
    """The batch child hangs as a whole; its parts then run one child each, within their own
    limits: the hanging one times out, the one calling it is not run, the rest pass."""
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "layers.py"
    path.write_text(path.read_text().replace("  out = np.maximum(0, x)\n",
                                             "  while True:\n    pass\n"))
    started = time.monotonic()
    result = quick_session.grade(sub, only={"affine_forward", "relu_forward", "relu_backward",
                                            "affine_relu_forward", "affine_relu_backward",
                                            "sgd"})
    assert [v.passed for v in result.verdicts] == [True, False, False, False, False, True]
    hung, after = verdict(result, "relu_forward"), verdict(result, "relu_backward")
    assert hung.kind == "timeout" and hung.message == "timed out after 4 s"
    assert after.kind == "not_run" and after.because == ["relu_forward"]
    # affine_relu_backward calls relu_forward through affine_relu_forward, not run either
    chained = verdict(result, "affine_relu_backward")
    assert chained.kind == "not_run" and chained.message.startswith(
        "not run: part 'relu_forward' timed out after 4 s")
    assert time.monotonic() - started < 4 * 2 + 20  # the batch's limit, then the part's


@pytest.mark.slow
def test_a_module_that_hangs_while_importing_fails_only_the_parts_importing_it(
        quick_session, tmp_path):
    """Waited for once by the batch, once by its own import; the parts of the modules that
    import fine still run and pass."""
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "optim.py"
    path.write_text(path.read_text().replace("import numpy as np\n",
                                             "import numpy as np\nwhile True:\n  pass\n", 1))
    started = time.monotonic()
    result = quick_session.grade(sub, only={"adam", "relu_forward"})
    adam, relu = verdict(result, "adam"), verdict(result, "relu_forward")
    assert adam.kind == "timeout" and adam.message == "importing nndl/optim.py timed out after 4 s"
    assert relu.passed, relu.message
    assert time.monotonic() - started < 4 * 2 + 20


def test_a_syntax_error_names_the_students_file_and_line(session, tmp_path):
    """As Python shows it: the file (relative to the submission), the line, its text."""
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "optim.py"
    lines = path.read_text().splitlines(keepends=True)
    number = lines.index("def sgd(w, dw, config=None):\n") + 1
    lines[number - 1] = "def sgd(w, dw, config=None)\n"
    path.write_text("".join(lines))
    result = session.grade(sub, only={"sgd", "relu_forward"})
    sgd = verdict(result, "sgd")
    assert sgd.kind == "import"
    assert sgd.message == f"SyntaxError: expected ':' (nndl/optim.py, line {number})"
    assert sgd.traceback[-2:] == [f'File "nndl/optim.py", line {number}',
                                  "    def sgd(w, dw, config=None)"]
    assert verdict(result, "relu_forward").passed


def test_a_part_printing_too_much_fails_alone_saying_so(session, tmp_path):
    """Past the output limit (64 MB) the part fails naming the limit, with the last lines it
    printed; the part after it starts with an empty output and passes."""
    sub = tmp_path / "sub"
    shutil.copytree(C147_FC, sub)
    path = sub / "nndl" / "layers.py"
    text = path.read_text()
    at = text.index("def affine_forward")
    at = text.index("  return out, cache\n", at)
    path.write_text(text[:at] + "  for i in range(700):\n    print(i, 'y' * 100000)\n"
                    + text[at:])
    result = session.grade(sub, only={"affine_forward", "relu_forward"})
    loud = verdict(result, "affine_forward")
    assert loud.message == ("affine_forward(x, w, b): printed more than the limit (64 MB) "
                            "of output (or wrote a file over it)")
    assert loud.output and loud.output[-1].endswith("y" * 50)
    assert verdict(result, "relu_forward").passed
