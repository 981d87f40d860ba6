from pathlib import Path

from pipeline import Pipeline, Variable, entity, pipe


@entity
class Greeter:
    @pipe(run_once=True, on_startup=True)
    def load(self) -> None:
        # Runs once per instance: a warm instance keeps what it loaded.
        self.greeting = Path("greeting.txt").read_text().strip()
        print(f"loaded the greeting: {self.greeting}")

    @pipe
    def greet(self, name: str, times: int) -> str:
        return " ".join([self.greeting.format(name=name)] * times)


with Pipeline() as builder:
    name = Variable(str, title="name")
    times = Variable(int, title="times", ge=1, le=5)

    greeter = Greeter()
    greeter.load()
    builder.output(greeter.greet(name, times))

pipeline = builder.get_pipeline()
