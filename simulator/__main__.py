from simulator.cli import main

main(prog_name="python -m simulator")
