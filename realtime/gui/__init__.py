"""The pyqtgraph window and its items: the only sub-package that imports Qt.
"""
