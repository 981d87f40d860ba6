"""{{display_name}}: counts the words of a text. Written against Mystic's authoring API
(`pipeline-ai`), which pipewright's Python runtime provides: nothing to install."""

from pipeline import Pipeline, Variable, entity, pipe


@entity
class WordCounter:
    @pipe(run_once=True, on_startup=True)
    def load(self) -> None:
        # What every run needs (a model, a vocabulary) is loaded here, once per instance:
        # a warm instance keeps it between runs.
        self.separators = None
        print("loaded")

    @pipe
    def count(self, text: str) -> int:
        return len(text.split(self.separators))


with Pipeline() as builder:
    text = Variable(str, title="text", description="The text whose words are counted")

    counter = WordCounter()
    counter.load()
    words = counter.count(text)

    builder.output(words)

my_new_pipeline = builder.get_pipeline()
