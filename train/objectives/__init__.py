"""What training minimises: the landmark losses, ELT, the attribute head's loss (sequential
multitasking) and the label regimes of the 2018 paper (which images carry which labels).
"""
