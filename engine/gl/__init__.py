"""GL: the renderer's post chain and the targets it draws to (offscreen EGL, glfw window)."""
