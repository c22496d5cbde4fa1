"""Sphinx configuration of the nnfast documentation.

Build (warnings are errors)::

    pip install -e ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

The API reference (``api.rst``) is generated from the docstrings by autodoc and numpydoc;
the gallery (``auto_examples/``, generated) runs every script in ``examples/`` at build time
through sphinx-gallery; the Markdown pages are read by myst-parser.
"""

import os
import sys

# The nnfast documented is the one imported: the installed one, or, when the build runs from
# the root of a checkout built in place (``python -m`` puts the working directory first on
# sys.path), that checkout.
import nnfast

project = "nnfast"
author = "the nnfast developers"
copyright = "the nnfast developers"
version = release = nnfast.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# ---- API reference --------------------------------------------------------------------------

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types
# Members are listed by autodoc; numpydoc's own member tables would need autosummary stubs.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# ---- Markdown -------------------------------------------------------------------------------

myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# ---- gallery --------------------------------------------------------------------------------

# docs/gallery_order.py orders the examples; sphinx-gallery imports it by name.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # run every example, not only plot_*.py
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "gallery_order.GalleryOrder",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_signature": False,
}
# The examples run under Agg (no display); sphinx-gallery collects their figures.
os.environ.setdefault("MPLBACKEND", "Agg")

# ---- HTML -----------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"nnfast {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
html_show_sourcelink = False


# ---- every public name is documented ---------------------------------------------------------

PUBLIC_MODULES = ("nnfast", "nnfast.kernels", "nnfast.reference", "nnfast.sklearn")


def _check_public_names_documented(app, env):
    """A warning (an error under -W) for each name in a public ``__all__`` left out of api.rst.

    The names are compared with what autodoc registered in the Python domain, under the name
    the user imports them by (``nnfast.MLP``, not ``nnfast.network.MLP``).
    """
    import importlib

    from sphinx.util import logging

    logger = logging.getLogger("nnfast.docs")
    documented = set(env.get_domain("py").objects)
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name.startswith("__"):  # __version__: shown in the page title
                continue
            if f"{module_name}.{name}" not in documented:
                logger.warning(
                    f"{module_name}.{name} is public (in __all__) but not in docs/api.rst"
                )


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out the methods the estimators inherit unchanged from scikit-learn.

    ``score`` of the mixins, ``get_metadata_routing``, the generated ``set_*_request``,
    ``set_output``, ``fit_transform`` …: scikit-learn documents them, and their docstrings
    refer to scikit-learn's glossary and user guide, which this site does not have. What
    nnfast defines or overrides is kept.
    """
    if what == "class" and (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
    app.connect("env-check-consistency", _check_public_names_documented)
