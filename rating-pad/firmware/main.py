# The Pico W starts here: the rating pad (picopad.py), configured by pad.json.
import picopad

picopad.main()
