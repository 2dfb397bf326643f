"""Per-process resources (adq.core.process): made once per process, remade in a forked child without closing
the parent's copy, and dropped together by the one reset."""

import os

from adq.core import process


def test_one_thing_per_key_per_process_and_one_reset_closes_them():
    made, closed = [], []
    first = process.once(("test", "a"), lambda: made.append(1) or object(), close=closed.append)
    assert process.once(("test", "a"), object) is first and made == [1]
    process.drop(process.kind("test"))
    assert closed == [first]
    assert process.once(("test", "a"), object) is not first


def test_a_forked_child_makes_its_own_and_lets_go_of_the_parents_without_closing_it():
    closed, let_go = [], []
    parent = process.once(("test", "fork"), lambda: "parent's", close=closed.append, inherited=let_go.append)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it must not close the parent's copy, and must get its own
        mine = process.once(("test", "fork"), lambda: "child's", close=closed.append, inherited=let_go.append)
        os.write(w, f"{mine}|{','.join(let_go)}|{','.join(closed)}".encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    mine, child_let_go, child_closed = os.read(r, 1000).decode().split("|")
    assert (mine, child_let_go, child_closed) == ("child's", "parent's", "")
    assert process.once(("test", "fork"), object) == parent and closed == let_go == []
    process.drop(process.kind("test"))
    assert closed == ["parent's"]
