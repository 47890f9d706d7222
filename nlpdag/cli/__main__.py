from nlpdag.cli import app

app()
