"""One module per level: `check(project, bin_dir, answers)` runs that level's main job in a
rendered, installed project the way its README tells a user to, and checks the result."""
