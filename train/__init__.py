"""Training recipes for Recombinator Networks (Honari et al., CVPR 2016 and CVPR 2018)."""
