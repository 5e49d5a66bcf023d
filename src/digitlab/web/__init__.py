"""The web pages: Recognise, History and Models, served by the API process."""
