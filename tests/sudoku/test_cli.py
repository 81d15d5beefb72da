import json

import lohard.sudoku as S
from lohard.sudoku._reference import KNOWN_PUZZLES
from lohard.sudoku.cli import main


def test_generate_and_rate_file(tmp_path, capsys):
    out = tmp_path / "g.npz"
    rc = main(["sudoku", "generate", "--n", "6", "--box", "2", "--difficulty", "easy",
               "--seed", "1", "--out", str(out), "--jobs", "1", "--quiet", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num"] == 6 and summary["box"] == 2
    s = S.load_puzzles(out)
    assert len(s) == 6 and (S.count_solutions(s.puzzles) == 1).all()
    rc = main(["sudoku", "rate", "--file", str(out), "--jobs", "1", "--quiet", "--json"])
    assert rc == 0
    rated = json.loads(capsys.readouterr().out)
    assert rated["num"] == 6 and rated["easy"] == 6
    txt = tmp_path / "p.txt"
    txt.write_text(KNOWN_PUZZLES["euler01"][0] + "\nnot a puzzle\n")
    assert main(["sudoku", "rate", "--file", str(txt), "--jobs", "1", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "1 puzzles: 1 easy" in cap.out and "line 2" in cap.err
    assert main(["sudoku", "generate", "--n", "0", "--out", str(tmp_path / "z.npz"),
                 "--quiet"]) == 2
    assert "--n (number of puzzles) must be >= 1" in capsys.readouterr().err


def test_rate_string(capsys):
    puz, sol = KNOWN_PUZZLES["inkala"]
    assert main(["sudoku", "rate", puz, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["difficulty"] == "hard" and d["solution"] == sol and d["guesses"] >= 1
    assert len(d["order"]) == puz.count(".")
    assert main(["sudoku", "rate", puz]) == 0
    assert "difficulty: hard" in capsys.readouterr().out


def test_rate_errors(capsys):
    assert main(["sudoku", "rate", "123"]) == 2
    assert "81 symbols" in capsys.readouterr().err
    assert main(["sudoku", "rate", "1..." "..1." "...." ".1.."]) == 2
    assert "more than one solution" in capsys.readouterr().err
    assert main(["sudoku", "rate"]) == 2
    assert main(["sudoku"]) == 2
