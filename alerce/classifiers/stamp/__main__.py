"""``python -m alerce.classifiers.stamp --out DIR ...`` = ``alerce train stamps --out DIR ...``."""

from alerce.classifiers.stamp.training import main

raise SystemExit(main())
