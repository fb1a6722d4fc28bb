// AssetbuildDialogue.cs - written by assetbuild's Unity export; do not edit (it is replaced by the
// next export).
//
// The dialogue lines of an assetbuild pack (id, locale, speaker, text, clip, duration, word
// timings, subtitle cues), read at run time from the pack's unity/dialogue.json:
//
//     public TextAsset dialogueJson;   // assign unity/dialogue.json in the inspector
//     var dialogue = AssetbuildDialogue.Load(dialogueJson);
//     var line = dialogue.Find("forest_intro_01", "fr");
//     subtitle.text = line.CueAt(audioSource.time);
//
// Clip paths are relative to the pack root. Unity loads assets by path at run time only from a
// Resources folder (or through Addressables): with the pack in Assets/Resources/<folder>/,
// line.LoadClip("<folder>") returns the AudioClip.

using System;
using System.Collections.Generic;
using UnityEngine;

namespace Assetbuild
{
    public class AssetbuildDialogue : ScriptableObject
    {
        /// <summary>A word and when it is spoken, in seconds from the start of the clip.</summary>
        [Serializable]
        public class Word
        {
            public string text;
            public float start;
            public float end;
        }

        /// <summary>A subtitle cue (lines joined with "\n"), as in the pack's .srt/.vtt files.</summary>
        [Serializable]
        public class Cue
        {
            public float start;
            public float end;
            public string text;
        }

        /// <summary>One line in one locale (field names match dialogue.json).</summary>
        [Serializable]
        public class Line
        {
            public string id;
            public string name;
            public string locale;
            public string fallbackFrom;
            public string speaker;
            public string text;
            public string clip;
            public float duration;
            public bool loop;
            public int loopStart;
            public int loopEnd;
            public Word[] words;
            public Cue[] cues;
            public string srt;
            public string vtt;
            public string rhubarb;
            public string visemes;

            /// <summary>The clip's Resources.Load path when the pack is in Resources/folder.</summary>
            public string ResourcesPath(string folder)
            {
                string path = clip ?? "";
                int slash = path.LastIndexOf('/');
                int dot = path.LastIndexOf('.');
                if (dot > slash)
                    path = path.Substring(0, dot);
                return string.IsNullOrEmpty(folder) ? path : folder.TrimEnd('/') + "/" + path;
            }

            /// <summary>Loads the clip from the pack in Resources/folder; null when absent.</summary>
            public AudioClip LoadClip(string folder)
            {
                return Resources.Load<AudioClip>(ResourcesPath(folder));
            }

            /// <summary>The subtitle shown at a time (seconds into the clip); "" between cues.</summary>
            public string CueAt(float time)
            {
                if (cues != null)
                {
                    foreach (Cue cue in cues)
                    {
                        if (time >= cue.start && time < cue.end)
                            return cue.text;
                    }
                }
                return "";
            }

            /// <summary>The index of the word spoken at a time, or -1.</summary>
            public int WordAt(float time)
            {
                if (words != null)
                {
                    for (int i = 0; i < words.Length; i++)
                    {
                        if (time >= words[i].start && time < words[i].end)
                            return i;
                    }
                }
                return -1;
            }
        }

        public int version;
        public string pack;
        public string packVersion;
        /// <summary>The source locale, "" in a pack without locales.</summary>
        public string sourceLocale;
        public string[] locales;
        public Line[] lines;

        [NonSerialized] Dictionary<string, Line> index;

        /// <summary>Reads a pack's unity/dialogue.json.</summary>
        public static AssetbuildDialogue Load(TextAsset json)
        {
            if (json == null)
                throw new ArgumentNullException("json");
            return FromJson(json.text);
        }

        /// <summary>Reads the text of a pack's unity/dialogue.json.</summary>
        public static AssetbuildDialogue FromJson(string json)
        {
            AssetbuildDialogue dialogue = CreateInstance<AssetbuildDialogue>();
            JsonUtility.FromJsonOverwrite(json, dialogue);
            dialogue.name = string.IsNullOrEmpty(dialogue.pack) ? "AssetbuildDialogue" : dialogue.pack;
            dialogue.index = null;
            return dialogue;
        }

        /// <summary>
        /// A line by id in a locale, or null. An empty locale means the source locale. A locale
        /// the pack lacks falls back to its language ("fr-CA" to "fr"), then to the source locale.
        /// </summary>
        public Line Find(string id, string locale = null)
        {
            Line line;
            return TryFind(id, locale, out line) ? line : null;
        }

        public bool TryFind(string id, string locale, out Line line)
        {
            line = null;
            if (string.IsNullOrEmpty(id))
                return false;
            if (index == null)
                BuildIndex();
            string source = sourceLocale ?? "";
            if (string.IsNullOrEmpty(locale))
                locale = source;
            if (index.TryGetValue(Key(id, locale), out line))
                return true;
            int dash = locale.IndexOfAny(new[] { '-', '_' });
            if (dash > 0 && index.TryGetValue(Key(id, locale.Substring(0, dash)), out line))
                return true;
            return index.TryGetValue(Key(id, source), out line) || index.TryGetValue(Key(id, ""), out line);
        }

        /// <summary>Every line in a locale (the source locale when empty).</summary>
        public List<Line> InLocale(string locale)
        {
            if (string.IsNullOrEmpty(locale))
                locale = sourceLocale ?? "";
            List<Line> found = new List<Line>();
            if (lines != null)
            {
                foreach (Line line in lines)
                {
                    if (line != null && string.Equals(line.locale ?? "", locale, StringComparison.OrdinalIgnoreCase))
                        found.Add(line);
                }
            }
            return found;
        }

        void BuildIndex()
        {
            index = new Dictionary<string, Line>(StringComparer.OrdinalIgnoreCase);
            if (lines == null)
                return;
            foreach (Line line in lines)
            {
                if (line != null && !string.IsNullOrEmpty(line.id))
                    index[Key(line.id, line.locale ?? "")] = line;
            }
        }

        static string Key(string id, string locale)
        {
            return id + "\n" + locale;
        }
    }
}
