"""``python -m torchvision_customizer`` runs the ``tvc`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
