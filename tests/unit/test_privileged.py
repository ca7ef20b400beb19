"""Which capabilities a privileged container must go without, read from the bounding set."""

from __future__ import annotations


from harness.containers.privileged import missing_capabilities



def test_a_bounding_set_without_sys_resource_is_named() -> None:
    status = "Name:\tpython\nCapBnd:\t000001fffeffffff\n"
    assert missing_capabilities(status, last_cap=40) == ["CAP_SYS_RESOURCE"]


def test_a_complete_bounding_set_needs_nothing() -> None:
    assert missing_capabilities("CapBnd:\t000001ffffffffff\n", last_cap=40) == []


def test_capabilities_newer_than_the_table_are_not_guessed() -> None:
    assert missing_capabilities("CapBnd:\t000001ffffffffff\n", last_cap=45) == []
