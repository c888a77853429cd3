"""Print the example app's models as a Graphviz graph: ``python models_graph.py | dot -Tsvg > models.svg``.

The same as ``c2cwsgiutils_models_graph c2cwsgiutils_app.models -o models.svg``.
"""

from c2cwsgiutils_app import models

from c2cwsgiutils.models_graph import generate_model_graph

if __name__ == "__main__":
    generate_model_graph(models)
