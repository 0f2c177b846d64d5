"""Bitcoin Core's argument and bitcoin.conf rules (src/common/args.cpp, config.cpp,
settings.cpp), as peerkeeperd applies them; cases follow Core's getarg_tests.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerkeeper.daemon.args import ArgsError, ArgsManager, ArgSpec, interpret_bool

SPECS = [
    ArgSpec("foo"),
    ArgSpec("bar"),
    ArgSpec("connect", network_only=True),
    ArgSpec("port", network_only=True),
    ArgSpec("rpcpassword"),
    ArgSpec("regtest"),
    ArgSpec("testnet"),
    ArgSpec("testnet4"),
    ArgSpec("signet"),
    ArgSpec("chain"),
    ArgSpec("datadir"),
    ArgSpec("conf"),
    ArgSpec("includeconf"),
    ArgSpec("wallet", disallow_negation=True),
    ArgSpec("rpcauth", disallow_elision=True),
]


def args(*argv: str, conf: str | None = None, chain: str | None = None) -> ArgsManager:
    a = ArgsManager(SPECS)
    a.parse_parameters(list(argv))
    if conf is not None:
        a.read_config_text(conf, "test.conf")
    a.select_network(chain if chain is not None else a.chain())
    return a


def test_interpret_bool_is_cores() -> None:
    assert interpret_bool("") and interpret_bool("1") and interpret_bool("2")
    assert interpret_bool("-1") and interpret_bool("1foo") and interpret_bool(" 7")
    assert not interpret_bool("0") and not interpret_bool("foo") and not interpret_bool("00")
    assert not interpret_bool("+0")


def test_bool_args_negation_and_last_value_wins() -> None:
    assert args("-foo").get_bool_arg("foo", False) is True
    assert args("--foo").get_bool_arg("foo", False) is True  # --foo is -foo
    assert args("-foo=0").get_bool_arg("foo", True) is False
    a = args("-nofoo")
    assert a.get_bool_arg("foo", True) is False and a.is_arg_negated("foo") and a.is_arg_set("foo")
    assert a.get_arg("foo") == "0"
    assert args("-nofoo=0").get_bool_arg("foo", False) is True  # double negative
    assert args("-foo", "-nofoo").get_bool_arg("foo", True) is False
    assert args("-nofoo", "-foo").get_bool_arg("foo", False) is True
    assert args("-foo=a", "-foo=b").get_arg("foo") == "b"  # command line: last wins
    assert args().get_arg("foo", "dflt") == "dflt" and not args().is_arg_set("foo")
    assert args("-foo=12abc").get_int_arg("foo", 5) == 12
    assert args("-foo=x").get_int_arg("foo", 5) == 0
    assert args("-nofoo").get_int_arg("foo", 5) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-baz"], "Invalid parameter -baz"),
        (["-regtest.foo=1"], "Invalid parameter -regtest.foo=1"),
        (["-nowallet"], "Negating of -wallet is meaningless and therefore forbidden"),
        (
            ["-rpcauth"],
            "Can not set -rpcauth with no value. Please specify value with -rpcauth=value.",
        ),
        (
            ["-includeconf=x.conf"],
            '-includeconf cannot be used from commandline; -includeconf="x.conf"',
        ),
    ],
)
def test_command_line_errors_are_cores(argv: list[str], message: str) -> None:
    with pytest.raises(ArgsError) as e:
        ArgsManager(SPECS).parse_parameters(argv)
    assert str(e.value) == message


def test_noincludeconf_is_allowed_and_a_lone_dash_ends_parsing() -> None:
    a = ArgsManager(SPECS)
    a.parse_parameters(["-noincludeconf", "-foo", "-", "-baz"])
    assert a.is_arg_negated("includeconf") and a.get_bool_arg("foo", False)


CONF = """
# a comment
foo=top1
foo=top2
bar=only-top
connect=default-section
port=1
regtest.port=18555
[regtest]
foo=reg1
foo=reg2
connect=reg-a
connect=reg-b
"""


def test_config_precedence_command_line_then_section_then_default() -> None:
    a = args(conf=CONF, chain="regtest")
    assert a.get_arg("foo") == "reg1"  # the config file: first value wins
    assert a.get_arg("bar") == "only-top"  # default section applies to ordinary options
    assert a.get_arg("port") == "18555"  # section.name= form
    # A network-only option ignores the default section off mainnet.
    assert a.get_args("connect") == ["reg-a", "reg-b"]
    m = args(conf=CONF, chain="main")
    assert m.get_arg("foo") == "top1" and m.get_args("connect") == ["default-section"]
    assert m.get_arg("port") == "1"
    c = args("-foo=cmd", conf=CONF, chain="regtest")
    assert c.get_arg("foo") == "cmd"  # the command line wins


def test_list_options_merge_and_negation_drops_what_came_before() -> None:
    conf = "[regtest]\nconnect=c1\nconnect=c2\n"
    assert args("-connect=a", conf=conf, chain="regtest").get_args("connect") == ["a", "c1", "c2"]
    assert args("-noconnect", conf=conf, chain="regtest").get_args("connect") == []
    # Core's "zombie" rule: negated then set again brings the config values back.
    assert args("-noconnect", "-connect=a", conf=conf, chain="regtest").get_args("connect") == [
        "a",
        "c1",
        "c2",
    ]
    assert args("-connect=a", "-noconnect", "-connect=b", chain="regtest").get_args("connect") == [
        "b"
    ]
    neg = "[regtest]\nconnect=c1\nnoconnect=1\nconnect=c2\n"
    assert args(conf=neg, chain="regtest").get_args("connect") == ["c2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "-foo=1\n",
            "parse error on line 1: -foo=1, options in configuration file must be specified without leading -",
        ),
        (
            "\n\nnofoo\n",
            "parse error on line 3: nofoo, if you intended to specify a negated option, use nofoo=1 instead",
        ),
        ("foo\n", "parse error on line 1: foo"),
        (
            "rpcpassword=a#b\n",
            "parse error on line 1, using # in rpcpassword can be ambiguous and should be avoided",
        ),
        ("baz=1\n", "Invalid configuration value baz"),
        (
            "conf=other.conf\n",
            "conf cannot be set in the configuration file; use includeconf= if you want to include additional config files",
        ),
    ],
)
def test_config_errors_are_cores(text: str, message: str) -> None:
    with pytest.raises(ArgsError) as e:
        ArgsManager(SPECS).read_config_text(text, "bitcoin.conf")
    assert str(e.value) == message


def test_a_section_key_inside_a_section_is_invalid_as_in_core() -> None:
    with pytest.raises(ArgsError, match="Invalid configuration value regtest.regtest.port"):
        ArgsManager(SPECS).read_config_text("[regtest]\nregtest.port=1\n")


def test_chain_selection() -> None:
    assert args().chain() == "main"
    assert args("-regtest").chain() == "regtest"
    assert args("-testnet").chain() == "test"
    assert args("-chain=signet").chain() == "signet"
    assert args(conf="regtest=1\n").chain() == "regtest"
    # A negated -regtest on the command line is ignored, as in Core.
    assert args("-noregtest", conf="regtest=1\n").chain() == "regtest"
    for bad in (["-regtest", "-testnet"], ["-chain=main", "-signet"]):
        with pytest.raises(ArgsError, match="Invalid combination of -regtest"):
            args(*bad).chain()


def test_config_files_includeconf_and_datadir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bitcoin.conf").write_text(
        "regtest=1\nincludeconf=extra.conf\n[regtest]\nfoo=main-file\n"
    )
    (data / "extra.conf").write_text("bar=from-include\nincludeconf=nested.conf\n")
    a = ArgsManager(SPECS)
    a.parse_parameters([f"-datadir={data}"])
    assert a.read_config_files(tmp_path / "unused") == data / "bitcoin.conf"
    a.select_network(a.chain())
    assert a.chain() == "regtest" and a.get_arg("foo") == "main-file"
    assert a.get_arg("bar") == "from-include"
    assert a.warnings == [
        "warning: -includeconf cannot be used from included files; ignoring -includeconf=nested.conf"
    ]
    # -noincludeconf: no included file is read.
    b = ArgsManager(SPECS)
    b.parse_parameters([f"-datadir={data}", "-noincludeconf"])
    b.read_config_files(tmp_path)
    b.select_network(b.chain())
    assert b.get_arg("bar") is None


def test_config_file_errors(tmp_path: Path) -> None:
    a = ArgsManager(SPECS)
    a.parse_parameters([f"-datadir={tmp_path}", "-conf=missing.conf"])
    with pytest.raises(
        ArgsError, match=r'specified config file ".*missing.conf" could not be opened\.'
    ):
        a.read_config_files(tmp_path)
    b = ArgsManager(SPECS)
    b.parse_parameters([f"-datadir={tmp_path / 'nope'}"])
    with pytest.raises(ArgsError, match=r'specified data directory ".*nope" does not exist\.'):
        b.read_config_files(tmp_path)
    (tmp_path / "bitcoin.conf").write_text("includeconf=gone.conf\n")
    c = ArgsManager(SPECS)
    c.parse_parameters([f"-datadir={tmp_path}"])
    with pytest.raises(ArgsError, match="Failed to include configuration file gone.conf"):
        c.read_config_files(tmp_path)
    # No bitcoin.conf at all is fine, and -noconf reads none.
    (tmp_path / "bitcoin.conf").unlink()
    d = ArgsManager(SPECS)
    d.parse_parameters([f"-datadir={tmp_path}"])
    assert d.read_config_files(tmp_path) is None


def test_a_bare_word_ends_the_options_and_is_kept() -> None:
    """Core ParseParameters with bitcoind's ArgsManager (any command accepted): the first
    word and the rest are commands, not options; bitcoind refuses them later."""
    a = args("-foo=1", "word", "-baz")
    assert a.commands == ["word", "-baz"]
    assert a.get_arg("foo") == "1" and not a.is_arg_set("baz")


def test_a_double_negative_is_true_with_cores_warning() -> None:
    a = args("-nofoo=0")
    assert a.get_bool_arg("foo", False) is True
    assert a.warnings == ["Parsed potentially confusing double-negative -foo=0"]


def test_log_args_is_cores_listing_with_secrets_hidden() -> None:
    """Core ArgsManager::LogArgs: the config file's values by section, then the command
    line's, as JSON; SENSITIVE options as ****."""
    a = ArgsManager([ArgSpec(n) for n in ("addnode", "rpcpassword", "server", "regtest", "foo")])
    a.parse_parameters(["-addnode=some.node", "-rpcpassword=secret", "-nofoo"])
    a.read_config_text("regtest=1\n[regtest]\nserver=1\n", "bitcoin.conf")
    assert a.log_args(frozenset({"rpcpassword"})) == [
        'Config file arg: regtest="1"',
        'Config file arg: [regtest] server="1"',
        'Command-line arg: addnode="some.node"',
        "Command-line arg: foo=false",
        "Command-line arg: rpcpassword=****",
    ]
