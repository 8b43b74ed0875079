from troy_cli.main import run

run()
