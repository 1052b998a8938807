from seks.cli import main

main()
