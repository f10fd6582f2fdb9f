"""``python -m lakeforge`` and the script spark-submit runs (see spark-submit.sh)."""

from lakeforge.cli.main import main

if __name__ == "__main__":
    main()
