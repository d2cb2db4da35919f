"""Prediction over a dataset, NME and its summaries, the evaluation reports.
"""
