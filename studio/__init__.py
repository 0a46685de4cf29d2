"""lyriscope studio: the whole flow of a set in one local, token-protected web app.

`lyriscope studio [SET]` (studio.command) serves a plain HTML/JS page (static/) from the
standard library's ThreadingHTTPServer (studio.server) over Studio's operations (studio.app),
which call what the CLI calls:
    setview       the sets, a set's lines with their times and how far each line got
    edits         set.toml changes through setmodel.edit_set (the CLI's checks and messages)
    curation      the CurationSession of `lyriscope curate`
    training      a run's stats.jsonl and sample grids for the charts
    waveform      the song's peaks for the page's canvas
    job_commands  each job's `lyriscope` command line (train's from TrainLinesConfig)
    jobs          the queue running them as child processes (child: their entry point)
    progress      what their output says: lines, bar numbers, refusals
    files, uploads, fields, errors, options: serving, receiving and checking requests
Nothing else in lyriscope imports this package.
"""
