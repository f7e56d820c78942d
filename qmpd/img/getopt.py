"""GNU getopt_long with argument permutation, as qemu-img and qemu-io parse
their command lines (shared by qmpd-img's subcommands)."""

from __future__ import annotations


def getopt_long(argv: list[str], shortopts: str, longopts: dict[str, str]
                 ) -> tuple[list[tuple[str, str]], list[str]]:
    """GNU getopt with permutation: options may follow operands."""
    opts: list[tuple[str, str]] = []
    operands: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            operands.extend(argv[i + 1 :])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name not in longopts:
                raise ValueError(f"unrecognized option '{arg}'")
            short = longopts[name]
            if short.endswith(":"):
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise ValueError(f"option '{arg}' requires an argument")
                    value = argv[i]
                opts.append((short[0], value))
            else:
                opts.append((short, ""))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                ch = arg[j]
                pos = shortopts.find(ch)
                if pos < 0 or ch == ":":
                    raise ValueError(f"invalid option -- '{ch}'")
                if shortopts[pos + 1 : pos + 2] == ":":
                    if j + 1 < len(arg):
                        opts.append((ch, arg[j + 1 :]))
                    else:
                        i += 1
                        if i >= len(argv):
                            raise ValueError(f"option requires an argument -- '{ch}'")
                        opts.append((ch, argv[i]))
                    break
                opts.append((ch, ""))
                j += 1
        else:
            operands.append(arg)
        i += 1
    return opts, operands
