"""The engine by stage: audio/, synth/, gl/, offline/, show/, bench/, commands/; compose draws a frame."""
