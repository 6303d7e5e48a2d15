"""Sphinx configuration for the skhier documentation.

Build with ``make docs`` (HTML in ``docs/_build/html``). The gallery runs
every ``examples/plot_*.py`` script; set ``SKHIER_DOCS_GALLERY`` to a regular
expression (e.g. ``plot_line``) to execute only the matching scripts while
editing, or to ``none`` to skip running them.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_sphinxext"))

import skhier  # noqa: E402

project = "skhier"
author = "The skhier developers"
copyright = "2026, The skhier developers"
version = release = skhier.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skhier_docs",
]

templates_path = ["_templates"]
html_static_path = ["_static"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"

# -- HTML --------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"skhier {release}"
html_theme_options = {
    "description": "Hierarchical Bayesian models with a scikit-learn face",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_css_files = ["skhier.css"]

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
# Class pages list every method themselves (templates/autosummary/class.rst);
# numpydoc's own member tables would list scikit-learn's inherited methods.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# -- sphinx-gallery ----------------------------------------------------------
_pattern = os.environ.get("SKHIER_DOCS_GALLERY", "")
sphinx_gallery_conf = {
    "examples_dirs": os.path.join("..", "examples"),
    "gallery_dirs": "auto_examples",
    # every plot_*.py is executed (warnings are errors: -W)
    "filename_pattern": (r"/plot_" if not _pattern else _pattern),
    "plot_gallery": "False" if _pattern.lower() == "none" else "True",
    "within_subsection_order": "skhier_docs.ExampleOrder",
    # run every example on every build: a library change can break an example
    # whose own file did not change
    "run_stale_examples": True,
    "doc_module": ("skhier",),
    "backreferences_dir": os.path.join("gen_modules", "backreferences"),
    "reference_url": {"skhier": None},
    "reset_argv": "skhier_docs.reset_argv",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "show_memory": False,
    "download_all_examples": False,
    "capture_repr": (),
    "min_reported_time": 5,
}
