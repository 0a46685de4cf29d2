"""Image sources behind one interface: Openverse, Wikimedia Commons, Unsplash, Pexels, Pixabay, a local folder, a URL list."""
