"""Allow `python -m reliability_studio`."""

from reliability_studio.entry import main

main()
