"""``python -m certs``: the development PKI command line (see :mod:`certs.cli`)."""

from certs.cli import certs_group

if __name__ == "__main__":
    certs_group(prog_name="python -m certs")
